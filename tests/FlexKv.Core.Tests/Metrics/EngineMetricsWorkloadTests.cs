using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Metrics;

/// <summary>A scripted workload on the CPU tier alone, and what each metric of the model must read after each step.</summary>
public class EngineMetricsWorkloadTests
{
    [Fact]
    public void SaveThenLoad_CountsBlocksBytesOperationsLookupsAndRequestsExactly()
    {
        using var h = new EngineHarness();
        long bb = h.Engine.BlockBytes;
        long[] tokens = Tokens(4 * Bs + 1); // 4 full blocks (the last token is never saved)
        h.Save("A", tokens, Blocks(0, 5)); // its lookup finds nothing: 4 blocks not cached
        var m = new MetricValues(h.Engine);
        Assert.Equal(4, m["transfer_blocks", "direction=d2h"]);
        Assert.Equal(4 * bb, m["transfer_bytes", "direction=d2h"]);
        Assert.Equal(1, m["transfer_ops", "direction=d2h"]);
        Assert.Equal(1, m["transfer_seconds_count", "direction=d2h"]);
        Assert.Equal(1, m["transfer_seconds_bucket", "direction=d2h", "le=5"]); // a copy of 4 small blocks takes < 5 s
        Assert.Equal(0, m["transfer_ops", "direction=h2d"]);
        Assert.Equal(1, m["lookups", "outcome=miss"]);
        Assert.Equal(4, m["blocks_not_offered", "reason=not_cached"]);
        Assert.Equal(1, m["requests", "event=saved"]);
        Assert.Equal(1, m["requests", "event=finished"]);
        Assert.Equal(0, m["requests", "event=matched"]);
        Assert.Equal(4, m["tier_used_blocks", "tier=cpu"]);
        Assert.Equal(64, m["tier_capacity_blocks", "tier=cpu"]);
        Assert.Equal(64 * bb, m["tier_capacity_bytes", "tier=cpu"]);
        Assert.Equal(4 * bb, m["tier_used_bytes", "tier=cpu"]);

        Assert.Equal(4 * Bs, h.Engine.GetNumNewMatchedTokens("B", tokens, tokens.Length, 0));
        h.Load("B", Blocks(10, 4), 4 * Bs);
        // C shares B's first 2 blocks, then differs: 2 offered, 2 not cached.
        long[] c = tokens.Take(2 * Bs).Concat(Tokens(2 * Bs + 1, seed: 7)).ToArray();
        Assert.Equal(2 * Bs, h.Engine.GetNumNewMatchedTokens("C", c, c.Length, 0));
        // D asks with vLLM holding its first block already: 3 asked, 3 offered.
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("D", tokens, tokens.Length, Bs));

        m = new MetricValues(h.Engine);
        EngineStats s = h.Engine.Stats();
        Assert.Equal(4, m["transfer_blocks", "direction=h2d"]);
        Assert.Equal(4 * bb, m["transfer_bytes", "direction=h2d"]);
        Assert.Equal(1, m["transfer_ops", "direction=h2d"]);
        Assert.Equal(s.BytesMoved, m.Sum("transfer_bytes", "direction=d2h") + m.Sum("transfer_bytes", "direction=h2d"));
        Assert.Equal((4 + 2 + 3) * Bs, m["matched_tokens_by_tier", "tier=cpu"]);
        Assert.Equal(s.MatchedTokens, m.Sum("matched_tokens_by_tier"));
        Assert.Equal(0, m["matched_tokens_by_tier", "tier=ssd"]);
        Assert.Equal(2, m["lookups", "outcome=full"]);
        Assert.Equal(1, m["lookups", "outcome=partial"]);
        Assert.Equal(6, m["blocks_not_offered", "reason=not_cached"]);
        Assert.Equal(3, m["requests", "event=matched"]); // B, C and D, once each
        Assert.Equal(1, m["requests", "event=loaded"]);
        // Asking C again counts the lookup again, not the request.
        h.Engine.GetNumNewMatchedTokens("C", [], c.Length, 0);
        m = new MetricValues(h.Engine);
        Assert.Equal(3, m["requests", "event=matched"]);
        Assert.Equal(2, m["lookups", "outcome=partial"]);
        Assert.Equal(0, m.Sum("transfer_failures"));
    }

    [Fact]
    public void FailedCopies_CancelledLoads_Preemption_AndReset_AreCountedByReason()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(4 * Bs + 1);
        h.Save("A", tokens, Blocks(0, 5));
        var flaky = h.UseFlakyTransport();
        flaky.FailBlocks(11, 13);
        h.Engine.GetNumNewMatchedTokens("B", tokens, tokens.Length, 0);
        h.Load("B", Blocks(10, 4), 4 * Bs);
        var m = new MetricValues(h.Engine);
        Assert.Equal(2, m["transfer_failures", "direction=h2d", "reason=copy_failed"]);
        Assert.Equal(2, m["transfer_blocks", "direction=h2d"]);
        Assert.Equal(h.Engine.Stats().BlocksFailed, m.Sum("transfer_failures", "direction=h2d"));

        // A load planned and never launched: the request finishes, the load is cancelled.
        flaky.FailBlocks();
        Assert.Equal(4 * Bs, h.Engine.GetNumNewMatchedTokens("C", tokens, tokens.Length, 0));
        h.Engine.UpdateStateAfterAlloc("C", Blocks(20, 4), 4 * Bs);
        h.Engine.RequestFinished("C", [], tokens.Length, Blocks(20, 4), save: false);
        h.Engine.GetNumNewMatchedTokens("D", tokens, tokens.Length, 0);
        h.Engine.CancelRequest("D");
        h.Engine.Reset();
        m = new MetricValues(h.Engine);
        Assert.Equal(4, m["transfer_failures", "direction=h2d", "reason=cancelled"]);
        Assert.Equal(1, m["requests", "event=aborted"]);
        Assert.Equal(1, m["requests", "event=preempted"]);
        Assert.Equal(1, m["resets"]);
        Assert.Equal(1, m["transfer_ops", "direction=h2d"]); // a cancelled load is no operation
        // After the reset every block is gone, and nothing remembers them.
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("E", tokens, tokens.Length, 0));
        Assert.Equal(4, new MetricValues(h.Engine)["blocks_not_offered", "reason=not_cached"] - m["blocks_not_offered", "reason=not_cached"]);
    }

    [Fact]
    public void BlocksNotOffered_SaysEvictedBeingWrittenAndNotRegistered()
    {
        using var h = new EngineHarness(cpuBlocks: 3);
        long[] a = Tokens(3 * Bs + 1);
        h.Save("A", a, Blocks(0, 3));
        h.Save("B", Tokens(3 * Bs + 1, seed: 2), Blocks(3, 3)); // A's blocks leave the 3-slot CPU tier
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("C", a, a.Length, 0));
        var m = new MetricValues(h.Engine);
        Assert.Equal(3, m["blocks_not_offered", "reason=evicted"]);
        Assert.Equal(3, m["tier_evictions", "tier=cpu"]);
        Assert.Equal(h.Engine.Stats().Evictions, m["tier_evictions", "tier=cpu"]);

        // A save planned, not launched: its blocks are being written.
        long[] d = Tokens(2 * Bs + 1, seed: 3);
        h.Engine.GetNumNewMatchedTokens("D", d, d.Length, 0);
        Assert.True(h.Engine.RequestFinished("D", d, d.Length, Blocks(10, 2), save: true));
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("E", d, d.Length, 0));
        Assert.Equal(2, new MetricValues(h.Engine)["blocks_not_offered", "reason=being_written"]);

        using var bare = new EngineHarness(register: false);
        Assert.Equal(0, bare.Engine.GetNumNewMatchedTokens("F", a, a.Length, 0));
        Assert.Equal(3, new MetricValues(bare.Engine)["blocks_not_offered", "reason=not_registered"]);
    }
}
