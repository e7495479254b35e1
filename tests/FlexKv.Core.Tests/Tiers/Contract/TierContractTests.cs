using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>
/// What every lower tier promises, run against each one (SSD, the remote store, the test-only
/// memory tier stacked below SSD): blocks saved through it load back byte-exact once only the
/// tier holds them; a reset forgets them; a corrupt copy is a load error (recomputed) and leaves
/// the tier; a read error fails only its blocks and the engine goes on. Owned and persistent
/// tiers promise more (<see cref="OwnedTierContractTests"/>, <see cref="PersistentTierContractTests"/>).
/// </summary>
public abstract class TierContractTests : IDisposable
{
    /// <summary>An engine whose tier under test is the only place a block is left once <see cref="PushOutOfHotterTiers"/> ran.</summary>
    internal abstract EngineHarness Open();

    /// <summary>Waits until the tier holds <paramref name="blocks"/> more blocks than before.</summary>
    internal abstract void WaitStored(EngineHarness h, int blocks);

    /// <summary>Makes the blocks of <paramref name="tokens"/> readable only from the tier under test; returns the engine to load from.</summary>
    internal abstract EngineHarness PushOutOfHotterTiers(EngineHarness h, long[] tokens);

    /// <summary>Damages the tier's stored copy of the block that <paramref name="tokens"/>' block <paramref name="index"/> is.</summary>
    internal abstract void Corrupt(EngineHarness h, long[] tokens, int index);

    /// <summary>Makes the tier's reads fail (or work again).</summary>
    internal abstract void FailReads(EngineHarness h, bool fail);

    /// <summary>Blocks the tier has read for loads so far.</summary>
    internal abstract long Reads(EngineHarness h);

    /// <summary>Waits until a reset reached the tier (a shared store forgets in the background).</summary>
    internal virtual void AfterReset(EngineHarness h) { }

    private protected static readonly long[] First = Tokens(4 * Bs + 1, seed: 11);

    private protected EngineHarness SavedOnlyInTier(out EngineHarness loader)
    {
        EngineHarness h = Open();
        h.FillDevice(Blocks(0, 4), 100);
        h.Save("first", First, Blocks(0, 4));
        WaitStored(h, 4);
        loader = PushOutOfHotterTiers(h, First);
        return h;
    }

    [Fact]
    public void SavedBlocks_LoadByteExact_FromTheTierAlone()
    {
        using EngineHarness h = SavedOnlyInTier(out EngineHarness loader);
        long before = Reads(loader);
        Assert.Equal(4 * Bs, loader.Engine.GetNumNewMatchedTokens("load", First, First.Length, 0));
        int[] dst = Blocks(40, 4);
        loader.Load("load", dst, 4 * Bs);
        Assert.Empty(loader.FailedBlocks);
        Assert.Equal(before + 4, Reads(loader)); // every block came from the tier under test
        for (int i = 0; i < 4; i++) Assert.Equal(h.Device.Pattern(100 + i), loader.Device.Read(dst[i]));
        loader.Engine.RequestFinished("load", [], First.Length, dst, save: false);
        if (!ReferenceEquals(loader, h)) loader.Dispose();
    }

    [Fact]
    public void Reset_ForgetsTheTiersBlocks()
    {
        using EngineHarness h = SavedOnlyInTier(out EngineHarness loader);
        loader.Engine.Reset();
        AfterReset(loader);
        Assert.Equal(0, loader.Engine.GetNumNewMatchedTokens("after", First, First.Length, 0));
        loader.Engine.RequestFinished("after", [], First.Length, [], save: false);
        if (!ReferenceEquals(loader, h)) loader.Dispose();
    }

    [Fact]
    public void ACorruptCopy_IsALoadError_AndLeavesTheTier()
    {
        using EngineHarness h = SavedOnlyInTier(out EngineHarness loader);
        Corrupt(h, First, 2);
        Assert.Equal(4 * Bs, loader.Engine.GetNumNewMatchedTokens("load", First, First.Length, 0));
        int[] dst = Blocks(40, 4);
        loader.Load("load", dst, 4 * Bs);
        Assert.Equal([dst[2]], loader.FailedBlocks);
        for (int i = 0; i < 2; i++) Assert.Equal(h.Device.Pattern(100 + i), loader.Device.Read(dst[i]));
        loader.Engine.RequestFinished("load", [], First.Length, dst, save: false);
        // The bad copy is gone: the tier offers only what it can still serve.
        Assert.Equal(2 * Bs, loader.Engine.GetNumNewMatchedTokens("again", First, First.Length, 0));
        loader.Engine.RequestFinished("again", [], First.Length, [], save: false);
        if (!ReferenceEquals(loader, h)) loader.Dispose();
    }

    [Fact]
    public void AReadError_FailsOnlyItsBlocks_AndTheEngineGoesOn()
    {
        using EngineHarness h = SavedOnlyInTier(out EngineHarness loader);
        FailReads(h, true);
        Assert.Equal(4 * Bs, loader.Engine.GetNumNewMatchedTokens("load", First, First.Length, 0));
        loader.Load("load", Blocks(40, 4), 4 * Bs);
        Assert.Equal(4, loader.FailedBlocks.Count);
        loader.Engine.RequestFinished("load", [], First.Length, Blocks(40, 4), save: false);
        FailReads(h, false);
        long[] other = Tokens(2 * Bs + 1, seed: 12);
        loader.FillDevice(Blocks(10, 2), 200);
        loader.Save("other", other, Blocks(10, 2));
        Assert.Equal(2 * Bs, loader.Engine.GetNumNewMatchedTokens("other-load", other, other.Length, 0));
        loader.Load("other-load", Blocks(50, 2), 2 * Bs);
        Assert.Equal(loader.Device.Pattern(210), loader.Device.Read(50));
        if (!ReferenceEquals(loader, h)) loader.Dispose();
    }

    public virtual void Dispose() { }
}
