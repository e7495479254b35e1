using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineRequestStateTests
{
    private static void AssertStatus(FlexKvStatus status, Action call) =>
        Assert.Equal(status, Assert.Throws<FlexKvException>(call).Status);

    [Fact]
    public void RequestFinished_Twice_ThrowsInvalidState()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(9);
        h.Engine.GetNumNewMatchedTokens("A", tokens, 9, 0);
        Assert.False(h.Engine.RequestFinished("A", tokens, 9, Blocks(0, 3), save: false));

        AssertStatus(FlexKvStatus.InvalidState, () => h.Engine.RequestFinished("A", tokens, 9, Blocks(0, 3), save: false));
        AssertStatus(FlexKvStatus.InvalidState, () => h.Engine.RequestFinished("A", [], 0, [], save: false));
    }

    [Fact]
    public void RequestFinished_TwiceWhileTheSaveIsPending_ThrowsInvalidState()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(9);
        Assert.True(h.Engine.RequestFinished("A", tokens, 9, Blocks(0, 3), save: true));

        AssertStatus(FlexKvStatus.InvalidState, () => h.Engine.RequestFinished("A", tokens, 9, Blocks(0, 3), save: true));
        h.Engine.LaunchTasks();
        h.WaitFor(FinishedKind.Sending, "A");
        Assert.Equal(1, h.Count(FinishedKind.Sending, "A"));
        h.AssertIdle();
    }

    [Fact]
    public void UpdateStateAfterAlloc_UnknownRequest_ThrowsUnknownRequest()
    {
        using var h = new EngineHarness();

        AssertStatus(FlexKvStatus.UnknownRequest, () => h.Engine.UpdateStateAfterAlloc("nobody", Blocks(0, 2), 4));
        AssertStatus(FlexKvStatus.UnknownRequest, () => h.Engine.UpdateStateAfterAlloc("nobody", [], 0));
    }

    [Fact]
    public void RequestFinished_UnknownRequestWithoutTokens_ThrowsUnknownRequest()
    {
        using var h = new EngineHarness();

        AssertStatus(FlexKvStatus.UnknownRequest, () => h.Engine.RequestFinished("nobody", [], 8, Blocks(0, 2), save: true));
    }

    [Fact]
    public void RequestFinished_NeverMatchedRequestWithTokens_IsAccepted()
    {
        // vLLM may abort a request before asking about it.
        using var h = new EngineHarness();

        Assert.False(h.Engine.RequestFinished("A", Tokens(9), 9, Blocks(0, 3), save: false));
        h.AssertIdle();
    }

    [Fact]
    public void UpdateStateAfterAlloc_MoreTokensThanMatched_ThrowsInvalidArgument()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens[..9], 9, 0);

        AssertStatus(FlexKvStatus.InvalidArgument, () => h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 12));
    }

    [Fact]
    public void UpdateStateAfterAlloc_BadBlockIds_ThrowInvalidArgument()
    {
        using var h = new EngineHarness(deviceBlocks: 32);
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);

        AssertStatus(FlexKvStatus.InvalidArgument, () => h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 3), 16)); // too few
        AssertStatus(FlexKvStatus.InvalidArgument, () => h.Engine.UpdateStateAfterAlloc("B", [10, 11, 32, 13, 14], 16)); // outside the cache
        AssertStatus(FlexKvStatus.InvalidArgument, () => h.Engine.UpdateStateAfterAlloc("B", [10, -1, 12, 13, 14], 16));
        Assert.Equal(0, h.Engine.LaunchTasks());
    }

    [Fact]
    public void UpdateStateAfterAlloc_SecondCallWithZeroTokens_KeepsThePlannedLoad()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 16);

        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 0);

        Assert.Equal(1, h.Engine.LaunchTasks());
        h.WaitFor(FinishedKind.Recving, "B");
        Assert.Equal(h.Device.Pattern(103), h.Device.Read(13));
    }

    [Fact]
    public void LaunchTasks_NothingPlanned_ReturnsZero()
    {
        using var h = new EngineHarness();

        Assert.Equal(0, h.Engine.LaunchTasks());
        h.Engine.GetNumNewMatchedTokens("A", Tokens(8), 8, 0);
        Assert.Equal(0, h.Engine.LaunchTasks());
    }

    [Fact]
    public void RequestFinished_LoadPlannedButNotLaunched_CancelsItAndForgetsTheRequestOnce()
    {
        // The aborted request's state is recycled; recycling it twice would make two later
        // requests share one state, so one of their finishes would fail.
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 16);

        Assert.False(h.Engine.RequestFinished("B", tokens, 17, Blocks(10, 5), save: true));

        Assert.Equal(0, h.Engine.LaunchTasks());
        h.Poll();
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.True(h.Device.IsZero(10));
        h.AssertIdle();

        h.Engine.GetNumNewMatchedTokens("X", Tokens(9, seed: 5), 9, 0);
        h.Engine.GetNumNewMatchedTokens("Y", Tokens(9, seed: 6), 9, 0);
        Assert.False(h.Engine.RequestFinished("X", [], 9, Blocks(20, 3), save: false));
        Assert.False(h.Engine.RequestFinished("Y", [], 9, Blocks(23, 3), save: false));
        h.AssertIdle();
    }

    [Fact]
    public void CancelRequest_PlannedLoad_ReportsItAndKeepsTheRequestKnown()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 16);

        h.Engine.CancelRequest("B");

        Assert.Equal(0, h.Engine.LaunchTasks());
        h.Poll();
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
        // Preempted requests are asked about again.
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        Assert.False(h.Engine.RequestFinished("B", tokens, 17, Blocks(10, 5), save: false));
        h.AssertIdle();
    }

    [Fact]
    public void CancelRequest_UnknownRequest_ThrowsUnknownRequest()
    {
        using var h = new EngineHarness();

        AssertStatus(FlexKvStatus.UnknownRequest, () => h.Engine.CancelRequest("nobody"));
    }
}
