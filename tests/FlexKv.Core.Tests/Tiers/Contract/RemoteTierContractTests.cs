using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>The tier contract on the remote tier (a shared store in memory; a second, cold engine loads).</summary>
public sealed class RemoteTierContractTests : TierContractTests
{
    private readonly InMemoryRemoteStore _store = new();
    private readonly List<EngineHarness> _loaders = new();

    internal override EngineHarness Open() => new(cpuBlocks: 16, deviceBlocks: 64, remote: _store,
        extraConfig: ",\"remote_drop_on_reset\":true,\"remote_lookup_budget_ms\":5000");

    internal override void WaitStored(EngineHarness h, int blocks)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (h.Engine.Stats().RemoteWritesPending > 0 || h.Engine.Stats().RemoteBlocksWritten < blocks)
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, "remote writes did not finish");
            Thread.Sleep(2);
        }
    }

    // Another engine on the same store has none of the blocks in its own tiers.
    internal override EngineHarness PushOutOfHotterTiers(EngineHarness h, long[] tokens)
    {
        var loader = Open();
        _loaders.Add(loader);
        return loader;
    }

    internal override void Corrupt(EngineHarness h, long[] tokens, int index)
    {
        UInt128 key = TierKeys.KeyOf(h, tokens, index);
        _store.Values[key] = _store.Values[key][..^1]; // a value of the wrong length fails its check
    }

    internal override void AfterReset(EngineHarness h)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew(); // remote_drop_on_reset deletes on the writer thread
        while (!_store.Values.IsEmpty) { Assert.True(sw.ElapsedMilliseconds < 10_000); Thread.Sleep(2); }
    }

    internal override void FailReads(EngineHarness h, bool fail) => _store.FailGets = fail;

    internal override long Reads(EngineHarness h) => h.Engine.Stats().RemoteBlocksRead;

    public override void Dispose()
    {
        foreach (EngineHarness l in _loaders) l.Dispose();
    }
}
