using FlexKv.Core.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineResetTests
{
    [Fact]
    public void Reset_WhileLoadAndSaveAreInFlight_StillReportsThemAndDropsEverything()
    {
        // Big tasks so that they are still running when Reset comes in.
        const int n = 240;
        using var h = new EngineHarness(cpuBlocks: 512, deviceBlocks: 2 * n + 2, spanBytes: 4096);
        long[] cached = Tokens(n * Bs + 1, seed: 1);
        long[] fresh = Tokens(n * Bs + 1, seed: 2);
        h.FillDevice(Blocks(0, n + 1), 0);
        h.Save("X", cached, Blocks(0, n + 1));

        Assert.Equal(n * Bs, h.Engine.GetNumNewMatchedTokens("B", cached, cached.Length, 0));
        h.Engine.UpdateStateAfterAlloc("B", Blocks(n + 1, n + 1), n * Bs);
        Assert.True(h.Engine.RequestFinished("A", fresh, fresh.Length, Blocks(0, n + 1), save: true));
        Assert.Equal(2, h.Engine.LaunchTasks());

        h.Engine.Reset();

        h.Poll();
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.Equal(1, h.Count(FinishedKind.Sending, "A"));
        EngineStats s = h.Engine.Stats();
        Assert.Equal(0, s.PinnedBlocks);
        Assert.Equal(0, s.CpuBlocksUsed);
        Assert.Equal(0, s.TasksInFlight);
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("C", cached, cached.Length, 0));
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("D", fresh, fresh.Length, 0));

        Assert.False(h.Engine.RequestFinished("B", [], cached.Length, Blocks(n + 1, n + 1), save: false));
        h.Engine.RequestFinished("C", [], cached.Length, [], save: false);
        h.Engine.RequestFinished("D", [], fresh.Length, [], save: false);
        h.AssertIdle();
    }

    [Fact]
    public void Reset_WithPlannedTasksAndPins_ReleasesThemAndReportsThePlannedOnes()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("X", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("P", tokens, 17, 0); // pins only
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 16); // planned load
        Assert.True(h.Engine.RequestFinished("A", Tokens(9, seed: 3), 9, Blocks(20, 3), save: true)); // planned save

        h.Engine.Reset();

        Assert.Equal(0, h.Engine.LaunchTasks());
        h.Poll();
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.Equal(1, h.Count(FinishedKind.Sending, "A"));
        EngineStats s = h.Engine.Stats();
        Assert.Equal(0, s.PinnedBlocks);
        Assert.Equal(0, s.CpuBlocksUsed);
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("C", tokens, 17, 0));
    }

    [Fact]
    public void Reset_ThenSave_CachesAgain()
    {
        using var h = new EngineHarness(cpuBlocks: 8);
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 50);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.Reset();

        h.Save("B", tokens, Blocks(0, 5));

        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("C", tokens, 17, 0));
        h.Load("C", Blocks(10, 5), 16);
        Assert.Equal(h.Device.Pattern(53), h.Device.Read(13));
        Assert.Equal(0, h.Engine.Stats().Evictions);
    }
}
