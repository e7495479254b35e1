using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;

namespace FlexKv.Core.Tests.Tiers.Remote;

public class KvEngineRemoteTests
{
    private const int Bs = EngineHarness.Bs;

    private static void WaitRemoteWritten(EngineHarness h, long blocks)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (h.Engine.Stats().RemoteBlocksWritten < blocks || h.Engine.Stats().RemoteWritesPending > 0)
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, "remote writes did not finish");
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void SecondEngine_LoadsWhatTheFirstSaved_ByteExact()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(4 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        using var b = new EngineHarness(remote: store);
        a.FillDevice(EngineHarness.Blocks(0, 4), 11);
        a.Save("a", tokens, EngineHarness.Blocks(0, 4));
        WaitRemoteWritten(a, 4);
        Assert.Equal(4, store.Values.Count);

        Assert.Equal(4 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(20, 4);
        b.Load("b", dst, 4 * Bs);
        Assert.Empty(b.FailedBlocks);
        for (int i = 0; i < 4; i++) Assert.Equal(a.Device.Pattern(11 + i), b.Device.Read(dst[i]));
        b.Engine.RequestFinished("b", [], tokens.Length, dst, save: false);
        b.AssertIdle();
        // Loaded blocks stay in b's CPU tier.
        Assert.Equal(4 * Bs, b.Engine.GetNumNewMatchedTokens("c", tokens, tokens.Length, 0));
        Assert.Equal(4, b.Engine.Stats().RemoteBlocksRead);
    }

    [Fact]
    public void RemoteMatch_ReleasedWithoutLoading_LeavesNothingBehind()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        using var b = new EngineHarness(remote: store);
        a.Save("a", tokens, EngineHarness.Blocks(0, 3));
        WaitRemoteWritten(a, 3);
        Assert.Equal(3 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        Assert.Equal(3 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0)); // asked again
        b.Engine.UpdateStateAfterAlloc("b", EngineHarness.Blocks(10, 3), 0);
        b.Engine.RequestFinished("b", [], tokens.Length, [], save: false);
        b.AssertIdle();
        Assert.Equal(0, b.Engine.Stats().CpuBlocksUsed);
    }

    [Fact]
    public void CorruptValue_IsALoadError_AndIsDeleted()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(2 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        using var b = new EngineHarness(remote: store);
        a.Save("a", tokens, EngineHarness.Blocks(0, 2));
        WaitRemoteWritten(a, 2);
        foreach (var k in store.Values.Keys.ToArray()) store.Values[k] = new byte[3]; // wrong length = corrupt
        Assert.Equal(2 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        b.Load("b", EngineHarness.Blocks(10, 2), 2 * Bs);
        Assert.Equal([10, 11], b.FailedBlocks.OrderBy(x => x));
        Assert.Equal(2, store.Deletes);
        Assert.Equal(2, b.Engine.Stats().RemoteReadsCorrupt);
    }

    [Fact]
    public void StoreDown_LookupsMiss_WritesAreDropped_AndNothingBlocks()
    {
        var store = new InMemoryRemoteStore { Down = true };
        long[] tokens = EngineHarness.Tokens(2 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        Assert.Contains(a.Engine.Warnings, w => w.Contains("not reachable"));
        a.Save("a", tokens, EngineHarness.Blocks(0, 2));
        Assert.Empty(store.Values);
        Assert.True(a.Engine.Stats().RemoteWritesDropped >= 2);
        using var b = new EngineHarness(remote: store);
        Assert.Equal(0, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        store.Down = false;
        a.Save("a2", EngineHarness.Tokens(2 * Bs + 1, seed: 3), EngineHarness.Blocks(4, 2));
        WaitRemoteWritten(a, 2);
        Assert.Equal(2, store.Values.Count);
    }

    [Fact]
    public void Reset_WithDropOnReset_DeletesTheEnginesKeys()
    {
        var store = new InMemoryRemoteStore();
        using var a = new EngineHarness(remote: store, extraConfig: ",\"remote_drop_on_reset\":true");
        a.Save("a", EngineHarness.Tokens(2 * Bs + 1), EngineHarness.Blocks(0, 2));
        WaitRemoteWritten(a, 2);
        a.Engine.Reset();
        var sw = System.Diagnostics.Stopwatch.StartNew(); // deleted by the remote writer thread
        while (!store.Values.IsEmpty && sw.ElapsedMilliseconds < 10_000) Thread.Sleep(2);
        Assert.Empty(store.Values);
    }
}
