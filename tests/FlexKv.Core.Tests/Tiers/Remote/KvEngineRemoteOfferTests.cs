using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;

namespace FlexKv.Core.Tests.Tiers.Remote;

/// <summary>
/// What the remote tier offers: no more than the CPU tier can stage (across requests matched
/// in the same step), and blocks after vLLM's own hit even when the local index lacks the start.
/// </summary>
public class KvEngineRemoteOfferTests
{
    private const int Bs = EngineHarness.Bs;

    private static (InMemoryRemoteStore Store, long[] Tokens) Shared(int blocks, int seed = 1)
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(blocks * Bs + 1, seed);
        using var writer = new EngineHarness(cpuBlocks: 64, deviceBlocks: 64, remote: store);
        writer.FillDevice(EngineHarness.Blocks(0, blocks), 30);
        writer.Save("w", tokens, EngineHarness.Blocks(0, blocks));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (store.Values.Count < blocks) { Assert.True(sw.ElapsedMilliseconds < 10_000); Thread.Sleep(2); }
        return (store, tokens);
    }

    [Fact]
    public void Offers_NoMoreRemoteBlocksThanTheCpuTierCanStage()
    {
        var (store, tokens) = Shared(20);
        using var h = new EngineHarness(cpuBlocks: 8, deviceBlocks: 64, remote: store);
        int offered = h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0);
        Assert.Equal(8 * Bs, offered); // 20 are in the store, 8 CPU slots to stage them through
        int[] dst = EngineHarness.Blocks(30, 8);
        h.Load("r", dst, offered);
        Assert.Empty(h.FailedBlocks);
        for (int i = 0; i < 8; i++) Assert.Equal(h.Device.Pattern(30 + i), h.Device.Read(dst[i]));
    }

    [Fact]
    public void Offers_ShareTheStagingRoomBetweenRequestsMatchedTogether()
    {
        var (store, tokens) = Shared(6);
        using var h = new EngineHarness(cpuBlocks: 8, deviceBlocks: 64, remote: store);
        int a = h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0);
        var (store2, other) = (store, EngineHarness.Tokens(6 * Bs + 1, seed: 2));
        using (var writer = new EngineHarness(cpuBlocks: 64, deviceBlocks: 64, remote: store2))
        {
            writer.Save("w2", other, EngineHarness.Blocks(0, 6));
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (store.Values.Count < 12) { Assert.True(sw.ElapsedMilliseconds < 10_000); Thread.Sleep(2); }
        }
        int b = h.Engine.GetNumNewMatchedTokens("b", other, other.Length, 0);
        Assert.Equal(6 * Bs, a);
        Assert.Equal(2 * Bs, b); // 8 slots: 6 promised to a
        h.Load("a", EngineHarness.Blocks(0, 6), a);
        h.Load("b", EngineHarness.Blocks(10, 2), b);
        Assert.Empty(h.FailedBlocks);
    }

    [Fact]
    public void AsksTheStore_AboutTheBlocksAfterVllmsHit_WhenTheLocalIndexLacksTheStart()
    {
        var (store, tokens) = Shared(4);
        using var h = new EngineHarness(cpuBlocks: 16, deviceBlocks: 64, remote: store);
        // vLLM's own prefix cache holds blocks 0-1; FlexKv's local index holds nothing.
        int offered = h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 2 * Bs);
        Assert.Equal(2 * Bs, offered);
        int[] dst = EngineHarness.Blocks(0, 4);
        h.Engine.UpdateStateAfterAlloc("r", dst, offered);
        Assert.Equal(1, h.Engine.LaunchTasks());
        h.WaitFor(FlexKv.Core.Engine.FinishedKind.Recving, "r");
        Assert.Empty(h.FailedBlocks);
        Assert.Equal(h.Device.Pattern(32), h.Device.Read(dst[2]));
        Assert.Equal(h.Device.Pattern(33), h.Device.Read(dst[3]));
    }
}
