using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Tiers.Memory;
using FlexKv.Core.Tests.Tiers.Ssd;
using FlexKv.Core.Tiers;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>
/// The tier contract on the test-only memory tier, stacked below a small SSD tier: proof that a
/// new tier is its folder plus one line in the list of tier openers.
/// </summary>
public sealed class MemoryTierContractTests : OwnedTierContractTests
{
    private readonly SsdEngineFixture _fx = new(dirs: 1);
    private MemoryTier? _memory;
    private long _stored;

    protected override int TierCapacity => 24;

    internal override EngineHarness Open()
    {
        _stored = 0;
        string ssd = $",\"ssd_cache_gb\":{(4 * 4096.0 / (1L << 30)).ToString("R", System.Globalization.CultureInfo.InvariantCulture)}," +
                     $"\"ssd_cache_dir\":\"{_fx.Dirs[0]}\",\"ssd_persist\":false";
        return new EngineHarness(cpuBlocks: 4, deviceBlocks: 64, extraConfig: ssd,
            tiers: [.. TierRegistry.Default, MemoryTier.Open(TierCapacity, t => _memory = t)]); // the one line
    }

    internal override void WaitStored(EngineHarness h, int blocks)
    {
        _stored += blocks;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (_memory!.BlocksWritten < _stored || h.Engine.Stats().PinnedBlocks > 0)
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, "memory tier writes did not finish");
            Thread.Sleep(2);
        }
    }

    // Blocks of other requests push the saved ones out of the 4-slot CPU and SSD tiers.
    internal override EngineHarness PushOutOfHotterTiers(EngineHarness h, long[] tokens)
    {
        for (int i = 0; i < 3; i++)
        {
            long[] filler = Tokens(4 * Bs + 1, seed: 900 + i);
            h.Save($"filler{i}", filler, Blocks(20, 4));
            WaitStored(h, 4);
        }
        Assert.True(Enumerable.Range(0, tokens.Length / Bs).All(b => TierKeys.SlotIn(h, "ssd", tokens, b) < 0),
            "the blocks are still on SSD");
        return h;
    }

    internal override void Corrupt(EngineHarness h, long[] tokens, int index) =>
        _memory!.Corrupt[TierKeys.SlotIn(h, "memory", tokens, index)] = true;

    internal override void FailReads(EngineHarness h, bool fail) => _memory!.FailReads = fail;

    internal override long Reads(EngineHarness h) => _memory!.BlocksRead;

    public override void Dispose() => _fx.Dispose();
}
