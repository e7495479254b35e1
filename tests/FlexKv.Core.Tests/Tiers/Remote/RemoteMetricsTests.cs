using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Tests.Metrics;

namespace FlexKv.Core.Tests.Tiers.Remote;

/// <summary>The engine metrics model with a remote store: hits from it, both directions, and a dead store.</summary>
public class RemoteMetricsTests
{
    private const int Bs = EngineHarness.Bs;

    private static void Wait(Func<bool> done, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!done())
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, what);
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void BlocksFromTheStore_AreRemoteHits_AndBothDirectionsAreCounted()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(4 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        using var b = new EngineHarness(remote: store);
        long bb = a.Engine.BlockBytes;
        a.Save("a", tokens, EngineHarness.Blocks(0, 4));
        var ma = MetricValues.WaitUntil(a.Engine, v => v["transfer_blocks", "direction=h2remote"] == 4);
        Assert.Equal(4 * bb, ma["transfer_bytes", "direction=h2remote"]);
        Assert.InRange(ma["transfer_ops", "direction=h2remote"], 1, 4);
        Assert.Equal(ma["transfer_ops", "direction=h2remote"], ma["transfer_seconds_count", "direction=h2remote"]);

        Assert.Equal(4 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        b.Load("b", EngineHarness.Blocks(10, 4), 4 * Bs);
        var m = new MetricValues(b.Engine);
        Assert.Equal(4 * Bs, m["matched_tokens_by_tier", "tier=remote"]);
        Assert.Equal(0, m["matched_tokens_by_tier", "tier=cpu"]);
        Assert.Equal(4, m["transfer_blocks", "direction=remote2h"]);
        Assert.Equal(4 * bb, m["transfer_bytes", "direction=remote2h"]);
        Assert.Equal(1, m["transfer_ops", "direction=remote2h"]);
        Assert.Equal(4, m["transfer_blocks", "direction=h2d"]);
        Assert.Equal(b.Engine.Stats().RemoteBlocksRead, m["transfer_blocks", "direction=remote2h"]);
    }

    [Fact]
    public void DeadStore_WritesFailAsUnavailable_LookupsSayRemoteDown_ReadsFailAsUnavailable()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using var a = new EngineHarness(remote: store);
        using var b = new EngineHarness(remote: store);
        a.Save("a", tokens, EngineHarness.Blocks(0, 3));
        Wait(() => store.Values.Count == 3, "remote writes");

        // The store answers the lookup, then dies before the read.
        Assert.Equal(3 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        store.Down = true;
        b.Load("b", EngineHarness.Blocks(10, 3), 3 * Bs);
        Assert.Equal(3, b.FailedBlocks.Count);
        var m = new MetricValues(b.Engine);
        Assert.Equal(3, m["transfer_failures", "direction=remote2h", "reason=unavailable"]);
        Assert.Equal(3, m["transfer_failures", "direction=h2d", "reason=unavailable"]);
        Assert.Equal(0, m["transfer_blocks", "direction=remote2h"]);
        b.Engine.RequestFinished("b", [], tokens.Length, EngineHarness.Blocks(10, 3), save: false);

        // Down: the next lookup cannot ask, and a save's write-through is refused.
        long[] c = EngineHarness.Tokens(2 * Bs + 1, seed: 6);
        Assert.Equal(0, b.Engine.GetNumNewMatchedTokens("c", c, c.Length, 0));
        Assert.Equal(2, new MetricValues(b.Engine)["blocks_not_offered", "reason=remote_down"]);
        a.Save("d", c, EngineHarness.Blocks(5, 2));
        MetricValues.WaitUntil(a.Engine, v => v["transfer_failures", "direction=h2remote", "reason=unavailable"] == 2);
        Assert.Equal(a.Engine.Stats().RemoteWritesDropped, new MetricValues(a.Engine).Sum("transfer_failures", "direction=h2remote"));
    }

    [Fact]
    public void LateStore_IsRemoteOverBudget_AndALostValueReadsAsEvicted()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using (var w = new EngineHarness(remote: store))
        {
            w.Save("w", tokens, EngineHarness.Blocks(0, 3));
            Wait(() => store.Values.Count == 3, "remote writes");
        }
        using var h = new EngineHarness(remote: store, extraConfig: ",\"remote_lookup_budget_ms\":50");
        store.Frozen = true;
        Assert.Equal(-1, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0));
        Thread.Sleep(80);
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0));
        var m = new MetricValues(h.Engine);
        Assert.Equal(3, m["blocks_not_offered", "reason=remote_over_budget"]);
        Assert.Equal(1, m["lookups", "outcome=miss"]); // the pending ask is not a lookup of its own

        using var r = new EngineHarness(remote: store);
        store.Frozen = false;
        Assert.Equal(3 * Bs, r.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        foreach (var k in store.Values.Keys.ToArray()) store.Values.TryRemove(k, out _); // the store evicts everything
        r.Load("r", EngineHarness.Blocks(10, 3), 3 * Bs);
        m = new MetricValues(r.Engine);
        Assert.Equal(3, m["transfer_failures", "direction=remote2h", "reason=missing"]);
        r.Engine.RequestFinished("r", [], tokens.Length, EngineHarness.Blocks(10, 3), save: false);
        Assert.Equal(0, r.Engine.GetNumNewMatchedTokens("s", tokens, tokens.Length, 0));
        Assert.Equal(3, new MetricValues(r.Engine)["blocks_not_offered", "reason=evicted"]);
    }
}
