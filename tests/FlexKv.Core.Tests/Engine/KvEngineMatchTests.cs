using FlexKv.Core.Errors;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineMatchTests
{
    [Fact]
    public void GetNumNewMatchedTokens_ColdCache_ReturnsZero()
    {
        using var h = new EngineHarness();

        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("A", Tokens(40), 40, 0));
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
    }

    [Fact]
    public void GetNumNewMatchedTokens_NoRegisteredCache_ReturnsZero()
    {
        using var h = new EngineHarness(register: false);
        long[] tokens = Tokens(17);

        Assert.False(h.Engine.RequestFinished("A", tokens, 17, Blocks(0, 5), save: true)); // nothing can be saved
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        Assert.False(h.Engine.Stats().Registered);
    }

    [Fact]
    public void GetNumNewMatchedTokens_SaveNotYetCopied_ReturnsZero()
    {
        // Blocks being written are not matchable until their bytes are in.
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        Assert.True(h.Engine.RequestFinished("A", tokens, 17, Blocks(0, 5), save: true));

        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));

        h.Engine.LaunchTasks();
        h.WaitFor(Core.Engine.FinishedKind.Sending, "A");
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
    }

    [Fact]
    public void GetNumNewMatchedTokens_AskedAgain_ReplacesThePreviousPins()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));

        for (int i = 0; i < 3; i++) Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        Assert.Equal(4, h.Engine.Stats().PinnedBlocks);

        // vLLM found 2 blocks locally in a later step: only the other 2 stay pinned.
        Assert.Equal(8, h.Engine.GetNumNewMatchedTokens("B", [], 17, 8));
        Assert.Equal(2, h.Engine.Stats().PinnedBlocks);

        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 0); // vLLM chose not to load
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
        Assert.False(h.Engine.RequestFinished("B", [], 17, Blocks(10, 5), save: true));
        h.AssertIdle();
    }

    [Fact]
    public void GetNumNewMatchedTokens_TokensOmittedForKnownRequest_UsesTheHashedTokens()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);

        Assert.Equal(12, h.Engine.GetNumNewMatchedTokens("B", [], 12, 0));
    }

    [Fact]
    public void GetNumNewMatchedTokens_NewRequestWithoutTokens_ThrowsInvalidArgument()
    {
        using var h = new EngineHarness();

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.GetNumNewMatchedTokens("A", [], 8, 0));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Theory]
    [InlineData(8, 3)]   // not block-aligned
    [InlineData(8, -4)]
    [InlineData(-1, 0)]
    [InlineData(7, 0)]   // does not match the buffer length
    public void GetNumNewMatchedTokens_BadCounts_ThrowInvalidArgument(int numTokens, int numComputed)
    {
        using var h = new EngineHarness();

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.GetNumNewMatchedTokens("A", Tokens(8), numTokens, numComputed));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public void GetNumNewMatchedTokens_TokensShrink_ThrowsInvalidArgument()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(12);
        h.Engine.GetNumNewMatchedTokens("A", tokens, 12, 0);

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.GetNumNewMatchedTokens("A", tokens[..8], 8, 0));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public void GetNumNewMatchedTokens_WhileItsLoadIsPlanned_ThrowsInvalidState()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Engine.UpdateStateAfterAlloc("B", Blocks(10, 5), 16);

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        Assert.Equal(FlexKvStatus.InvalidState, ex.Status);
    }
}
