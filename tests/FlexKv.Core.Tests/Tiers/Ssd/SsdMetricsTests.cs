using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Metrics;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>The engine metrics model with an SSD tier: hits per tier, both SSD directions, an injected checksum error, a full disk.</summary>
public class SsdMetricsTests
{
    private const int Bs = EngineHarness.Bs;

    [Fact]
    public void HitsPerTier_AndBothSsdDirections_MoveAsTheWorkloadSays()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(cpuBlocks: 6);
        long bb = h.Engine.BlockBytes;
        long[] a = EngineHarness.Tokens(6 * Bs + 1);
        h.Save("a", a, EngineHarness.Blocks(0, 6));
        SsdEngineFixture.WaitSsdWritten(h, 6);
        h.Save("b", EngineHarness.Tokens(4 * Bs + 1, seed: 9), EngineHarness.Blocks(20, 4)); // 4 of a's 6 leave the CPU tier
        SsdEngineFixture.WaitSsdWritten(h, 10);
        MetricValues.WaitUntil(h.Engine, v => v["transfer_blocks", "direction=h2ssd"] == 10);

        Assert.Equal(6 * Bs, h.Engine.GetNumNewMatchedTokens("c", a, a.Length, 0));
        var m = new MetricValues(h.Engine);
        Assert.Equal(2 * Bs, m["matched_tokens_by_tier", "tier=cpu"]);
        Assert.Equal(4 * Bs, m["matched_tokens_by_tier", "tier=ssd"]);
        Assert.Equal(10, m["transfer_blocks", "direction=h2ssd"]);
        Assert.Equal(10 * bb, m["transfer_bytes", "direction=h2ssd"]);
        Assert.InRange(m["transfer_ops", "direction=h2ssd"], 2, 10); // one per writer batch: at least one per save
        Assert.Equal(m["transfer_ops", "direction=h2ssd"], m["transfer_seconds_count", "direction=h2ssd"]);
        Assert.Equal(10, m["tier_used_blocks", "tier=ssd"]);
        Assert.Equal(64, m["tier_capacity_blocks", "tier=ssd"]);
        Assert.Equal(10 * bb, m["tier_used_bytes", "tier=ssd"]);

        h.Load("c", EngineHarness.Blocks(40, 6), 6 * Bs);
        m = new MetricValues(h.Engine);
        EngineStats s = h.Engine.Stats();
        Assert.Equal(4, m["transfer_blocks", "direction=ssd2h"]);
        Assert.Equal(s.SsdBlocksRead, m["transfer_blocks", "direction=ssd2h"]);
        Assert.Equal(4 * bb, m["transfer_bytes", "direction=ssd2h"]);
        Assert.Equal(1, m["transfer_ops", "direction=ssd2h"]); // one task staged from SSD
        Assert.Equal(1, m["transfer_seconds_count", "direction=ssd2h"]);
        Assert.Equal(6, m["transfer_blocks", "direction=h2d"]);
        Assert.Equal(0, m.Sum("transfer_failures"));
        Assert.Equal(s.SsdEvictions, m["tier_evictions", "tier=ssd"]);
    }

    [Fact]
    public void ChecksumError_IsCountedForTheSsdReadAndTheLoad_AndTheBlockReadsAsDroppedAfterwards()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        using var h = fx.Open(cpuBlocks: 3, flaky: true);
        long[] a = EngineHarness.Tokens(3 * Bs + 1);
        h.Save("a", a, EngineHarness.Blocks(0, 3));
        SsdEngineFixture.WaitSsdWritten(h, 3);
        h.Save("b", EngineHarness.Tokens(3 * Bs + 1, seed: 4), EngineHarness.Blocks(10, 3)); // a leaves the CPU tier
        SsdEngineFixture.WaitSsdWritten(h, 6);
        var (hasher, index, _) = h.Engine.Internals;
        var seq = new FlexKv.Core.Hashing.HashedSequence();
        seq.Begin(hasher.SeedFor(ReadOnlySpan<byte>.Empty));
        seq.Extend(hasher, a);
        int second = index.Lookup(seq.Keys[1]);
        lock (fx.Flaky!.CorruptReads) fx.Flaky.CorruptReads.Add(index.TierSlotOf(second, 0)); // a's second block

        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("c", a, a.Length, 0));
        h.Load("c", EngineHarness.Blocks(20, 3), 3 * Bs);
        Assert.Equal([21], h.FailedBlocks);
        var m = new MetricValues(h.Engine);
        Assert.Equal(1, m["transfer_failures", "direction=ssd2h", "reason=checksum"]);
        Assert.Equal(1, m["transfer_failures", "direction=h2d", "reason=checksum"]);
        Assert.Equal(1, m.Sum("transfer_failures", "direction=ssd2h"));
        Assert.Equal(2, m["transfer_blocks", "direction=ssd2h"]);
        Assert.Equal(2, m["transfer_blocks", "direction=h2d"]);
        Assert.Equal(h.Engine.Stats().SsdChecksumFailures, m["transfer_failures", "direction=ssd2h", "reason=checksum"]);

        h.Engine.RequestFinished("c", [], a.Length, EngineHarness.Blocks(20, 3), save: false);
        Assert.Equal(Bs, h.Engine.GetNumNewMatchedTokens("d", a, a.Length, 0)); // the bad block went
        Assert.Equal(2, new MetricValues(h.Engine)["blocks_not_offered", "reason=dropped"]);
    }

    [Fact]
    public void PinnedLimit_CutsAnOfferOfSsdBlocksThatNoCpuSlotCanStage()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(cpuBlocks: 3);
        long[] a = EngineHarness.Tokens(3 * Bs + 1);
        h.Save("a", a, EngineHarness.Blocks(0, 3));
        SsdEngineFixture.WaitSsdWritten(h, 3);
        h.Save("b", EngineHarness.Tokens(3 * Bs + 1, seed: 5), EngineHarness.Blocks(10, 3)); // a is on SSD only
        SsdEngineFixture.WaitSsdWritten(h, 6);
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("x", a, a.Length, 0)); // promised the 3 CPU slots
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("y", a, a.Length, 0));
        var m = new MetricValues(h.Engine);
        Assert.Equal(3, m["blocks_not_offered", "reason=pinned_limit"]);
        Assert.Equal(3 * Bs, m["matched_tokens_by_tier", "tier=ssd"]);
    }

    [Fact]
    public void FullDisk_CountsEveryBlockNotWrittenAsDiskFull()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(flaky: true);
        fx.Flaky!.DiskFull = true;
        // One block first: its write fails with ENOSPC and the tier stops taking writes. (With
        // several, a block whose parent's write failed is not written either: no failure of its own.)
        h.Save("x", EngineHarness.Tokens(Bs + 1, seed: 8), EngineHarness.Blocks(20, 1));
        MetricValues.WaitUntil(h.Engine, v => v["transfer_failures", "direction=h2ssd", "reason=disk_full"] == 1);
        Assert.True(h.Engine.Stats().SsdFull);
        h.Save("a", EngineHarness.Tokens(3 * Bs + 1), EngineHarness.Blocks(0, 3)); // the tier takes nothing now
        var m = new MetricValues(h.Engine);
        Assert.Equal(4, m["transfer_failures", "direction=h2ssd", "reason=disk_full"]);
        Assert.Equal(4, m.Sum("transfer_failures", "direction=h2ssd"));
        Assert.Equal(0, m["transfer_blocks", "direction=h2ssd"]);
    }
}
