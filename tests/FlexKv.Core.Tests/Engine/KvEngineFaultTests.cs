using FlexKv.Core.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineFaultTests
{
    [Fact]
    public void Load_SomeDeviceBlocksFail_ReportsExactlyThoseAndTheRequestOnce()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", tokens, Blocks(0, 5));
        var flaky = h.UseFlakyTransport();
        flaky.FailBlocks(11, 13);

        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        h.Load("B", Blocks(10, 5), 16);
        for (int i = 0; i < 3; i++) { h.Engine.WaitForCompletion(10); h.Poll(); } // nothing more may show up

        Assert.Equal([11, 13], h.FailedBlocks.Order());
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.Equal(h.Device.Pattern(100), h.Device.Read(10));
        Assert.Equal(h.Device.Pattern(102), h.Device.Read(12));
        EngineStats s = h.Engine.Stats();
        Assert.Equal(2, s.BlocksFailed);
        Assert.Equal(2, s.BlocksLoaded);
        Assert.Equal(0, s.PinnedBlocks);
        // A failed load does not harm the cached copy.
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("C", tokens, 17, 0));
    }

    [Fact]
    public void Load_TransportThrows_FailsEveryBlockOfTheTask()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));
        var flaky = h.UseFlakyTransport();
        flaky.ThrowOnCopy = true;

        h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0);
        h.Load("B", Blocks(10, 5), 16);

        Assert.Equal([10, 11, 12, 13], h.FailedBlocks.Order());
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.True(flaky.Calls > 0);
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 4)]
    [InlineData(3, 12)]
    public void Save_OneDeviceBlockFails_OnlyTheBlocksBeforeItBecomeMatchable(int failedBlock, int expectedTokens)
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        var flaky = h.UseFlakyTransport();
        flaky.FailBlocks(failedBlock);

        h.Save("A", tokens, Blocks(0, 5));

        Assert.Equal(1, h.Count(FinishedKind.Sending, "A")); // vLLM must still get its blocks back
        Assert.Equal(3, h.Engine.Stats().BlocksSaved);
        Assert.Equal(expectedTokens, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        h.Engine.RequestFinished("B", [], 17, [], save: false);
        h.AssertIdle();
    }

    [Fact]
    public void Save_AfterAFailedSave_RepairsTheHoleAndServesEveryBlock()
    {
        using var h = new EngineHarness(cpuBlocks: 4);
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        var flaky = h.UseFlakyTransport();
        flaky.FailBlocks(1);
        h.Save("A", tokens, Blocks(0, 5));
        flaky.FailBlocks();

        h.Save("B", tokens, Blocks(0, 5));

        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("C", tokens, 17, 0));
        h.Load("C", Blocks(10, 5), 16);
        for (int i = 0; i < 4; i++) Assert.Equal(h.Device.Pattern(100 + i), h.Device.Read(10 + i));
        Assert.True(h.Engine.Stats().CpuBlocksUsed <= 4);
    }

    [Fact]
    public void Save_HoleRepairMustEvictTheHolesOnlyChild_KeepsTheRepairedBlockIndexed()
    {
        // CPU tier full and the least recently used leaf is the child of the failed block, so
        // the repair evicts it. The block being repaired must stay indexed and become matchable.
        using var h = new EngineHarness(cpuBlocks: 3);
        long[] tokens = Tokens(13);        // 3 blocks saved
        long[] other = Tokens(5, seed: 9); // 1 block saved
        h.FillDevice(Blocks(0, 4), 100);
        var flaky = h.UseFlakyTransport();
        flaky.FailBlocks(1);
        h.Save("A", tokens, Blocks(0, 4)); // [0 ready] <- [1 failed] <- [2 ready]
        flaky.FailBlocks();
        h.Save("O", other, Blocks(20, 2)); // the tier is now full

        h.Save("B", tokens, Blocks(0, 4));

        Assert.Equal(12, h.Engine.GetNumNewMatchedTokens("C", tokens, 13, 0));
        h.Load("C", Blocks(10, 4), 12);
        for (int i = 0; i < 3; i++) Assert.Equal(h.Device.Pattern(100 + i), h.Device.Read(10 + i));
        Assert.Empty(h.FailedBlocks);
        EngineStats s = h.Engine.Stats();
        Assert.Equal(3, s.CpuBlocksUsed);
        Assert.Equal(0, s.PinnedBlocks);
    }
}
