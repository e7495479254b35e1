using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Tiers.Ssd;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>The tier contract on the SSD tier (small CPU tier in front, fault-injecting device).</summary>
public sealed class SsdTierContractTests : PersistentTierContractTests
{
    private readonly SsdEngineFixture _fx = new();
    private long _stored;

    protected override int TierCapacity => 16;

    internal override EngineHarness Open()
    {
        _stored = 0;
        return _fx.Open(cpuBlocks: 8, ssdBlocks: TierCapacity, flaky: true);
    }

    internal override EngineHarness Reopen() => Open();

    internal override void WaitStored(EngineHarness h, int blocks) => SsdEngineFixture.WaitSsdWritten(h, _stored += blocks);

    // A restart empties the CPU tier: only the SSD holds the blocks then.
    internal override EngineHarness PushOutOfHotterTiers(EngineHarness h, long[] tokens)
    {
        h.Engine.Dispose();
        return Open();
    }

    internal override void Corrupt(EngineHarness h, long[] tokens, int index)
    {
        lock (_fx.Flaky!.CorruptReads) _fx.Flaky.CorruptReads.Add(TierKeys.SlotIn(h, "ssd", tokens, index));
    }

    internal override void FailReads(EngineHarness h, bool fail)
    {
        lock (_fx.Flaky!.FailReads)
        {
            _fx.Flaky.FailReads.Clear();
            if (fail) _fx.Flaky.FailReads.UnionWith(Enumerable.Range(0, TierCapacity));
        }
    }

    internal override long Reads(EngineHarness h) => h.Engine.Stats().SsdBlocksRead;

    public override void Dispose() => _fx.Dispose();
}
