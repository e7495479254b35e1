using System.Text;
using FlexKv.Core.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineRoundTripTests
{
    [Fact]
    public void Load_AfterSaveOfSameTokens_CopiesEveryByteIntoTheNewBlocks()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17); // 4 full blocks + 1 token
        int[] src = Blocks(0, 5), dst = Blocks(10, 5);
        h.FillDevice(src, seedBase: 100);

        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("A", tokens, 17, 0));
        h.Engine.UpdateStateAfterAlloc("A", src, 0);
        Assert.True(h.Engine.RequestFinished("A", tokens, 17, src, save: true));
        Assert.Equal(1, h.Engine.LaunchTasks());
        h.WaitFor(FinishedKind.Sending, "A");

        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        h.Load("B", dst, 16);

        for (int i = 0; i < 4; i++) Assert.Equal(h.Device.Pattern(100 + i), h.Device.Read(dst[i]));
        Assert.True(h.Device.IsZero(dst[4]));
        Assert.Empty(h.FailedBlocks);
        Assert.Equal(1, h.Count(FinishedKind.Recving, "B"));
        Assert.False(h.Engine.RequestFinished("B", tokens, 17, dst, save: true)); // nothing new to save
        h.AssertIdle();
        EngineStats s = h.Engine.Stats();
        Assert.Equal(4, s.BlocksSaved);
        Assert.Equal(4, s.BlocksLoaded);
        Assert.Equal(8 * h.Device.BlockBytes, s.BytesMoved);
    }

    [Fact]
    public void RequestFinished_TokensFillWholeBlocks_SavesAllButTheLastBlock()
    {
        // The last token's KV is never computed, so its block is incomplete.
        using var h = new EngineHarness();
        long[] tokens = Tokens(16);
        h.FillDevice(Blocks(0, 4), 0);

        h.Save("A", tokens, Blocks(0, 4));

        Assert.Equal(3, h.Engine.Stats().BlocksSaved);
        Assert.Equal(12, h.Engine.GetNumNewMatchedTokens("B", tokens, 16, 0));
    }

    [Fact]
    public void Load_PartialPrefixHit_LoadsOnlyTheSharedBlocks()
    {
        using var h = new EngineHarness();
        long[] a = Tokens(17);
        long[] b = [.. a[..8], .. Tokens(9, seed: 2)];
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", a, Blocks(0, 5));

        Assert.Equal(8, h.Engine.GetNumNewMatchedTokens("B", b, 17, 0));
        h.Load("B", Blocks(20, 5), 8);

        Assert.Equal(h.Device.Pattern(100), h.Device.Read(20));
        Assert.Equal(h.Device.Pattern(101), h.Device.Read(21));
        for (int i = 22; i < 25; i++) Assert.True(h.Device.IsZero(i));
    }

    [Fact]
    public void Load_WithLocalHit_LoadsBlocksAfterTheComputedOnesIntoTheMatchingIds()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", tokens, Blocks(0, 5));

        // vLLM already has block 0; FlexKv supplies blocks 1..3, into block_ids[1..3].
        Assert.Equal(12, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, numComputedTokens: 4));
        Assert.Equal(3, h.Engine.Stats().PinnedBlocks);
        h.Load("B", Blocks(20, 5), 12);

        Assert.True(h.Device.IsZero(20));
        for (int i = 1; i < 4; i++) Assert.Equal(h.Device.Pattern(100 + i), h.Device.Read(20 + i));
        Assert.True(h.Device.IsZero(24));
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
    }

    [Fact]
    public void GetNumNewMatchedTokens_LocalHitCoversTheMatch_ReturnsZeroAndPinsNothing()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5));

        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, numComputedTokens: 16));
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
    }

    [Fact]
    public void UpdateStateAfterAlloc_FewerTokensThanMatched_LoadsThoseAndUnpinsTheRest()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", tokens, Blocks(0, 5));

        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        h.Engine.UpdateStateAfterAlloc("B", Blocks(20, 5), 8);
        Assert.Equal(2, h.Engine.Stats().PinnedBlocks); // only the blocks being loaded
        Assert.Equal(1, h.Engine.LaunchTasks());
        h.WaitFor(FinishedKind.Recving, "B");

        Assert.Equal(h.Device.Pattern(101), h.Device.Read(21));
        Assert.True(h.Device.IsZero(22));
        Assert.Equal(0, h.Engine.Stats().PinnedBlocks);
    }

    [Fact]
    public void GetNumNewMatchedTokens_OtherNamespace_DoesNotSeeTheBlocks()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.Save("A", tokens, Blocks(0, 5), ns: "lora-a");

        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("C", tokens, 17, 0, Encoding.UTF8.GetBytes("lora-b")));
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("D", tokens, 17, 0, Encoding.UTF8.GetBytes("lora-a")));
    }
}
