using FlexKv.Core.Tests.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>What an owned tier (slots, not shared) promises on top of the tier contract: it evicts its least recently used blocks when full.</summary>
public abstract class OwnedTierContractTests : TierContractTests
{
    /// <summary>How many blocks the tier holds at most.</summary>
    protected abstract int TierCapacity { get; }

    [Fact]
    public void AnOwnedTier_EvictsItsOldestBlocks_WhenFull()
    {
        using EngineHarness h = Open();
        int chains = TierCapacity / 2 + 2;
        var prompts = Enumerable.Range(0, chains).Select(i => Tokens(2 * Bs + 1, seed: 300 + i)).ToArray();
        for (int i = 0; i < chains; i++)
        {
            h.Save($"p{i}", prompts[i], Blocks(0, 2));
            WaitStored(h, 2);
        }
        EngineHarness loader = PushOutOfHotterTiers(h, prompts[^1]);
        Assert.Equal(0, loader.Engine.GetNumNewMatchedTokens("oldest", prompts[0], prompts[0].Length, 0)); // gone everywhere
        Assert.Equal(2 * Bs, loader.Engine.GetNumNewMatchedTokens("newest", prompts[^1], prompts[^1].Length, 0));
        loader.Engine.RequestFinished("oldest", [], prompts[0].Length, [], save: false);
        loader.Engine.RequestFinished("newest", [], prompts[^1].Length, [], save: false);
        loader.AssertIdle();
        if (!ReferenceEquals(loader, h)) loader.Dispose();
    }
}

/// <summary>What a persistent tier promises on top: the blocks it holds survive a restart.</summary>
public abstract class PersistentTierContractTests : OwnedTierContractTests
{
    /// <summary>Opens the engine again after a restart.</summary>
    internal abstract EngineHarness Reopen();

    [Fact]
    public void APersistentTier_ServesItsBlocks_AfterARestart()
    {
        using (EngineHarness h = Open())
        {
            h.FillDevice(Blocks(0, 4), 100);
            h.Save("first", First, Blocks(0, 4));
            WaitStored(h, 4);
        }
        using EngineHarness again = Reopen();
        Assert.Equal(4 * Bs, again.Engine.GetNumNewMatchedTokens("load", First, First.Length, 0));
        int[] dst = Blocks(40, 4);
        again.Load("load", dst, 4 * Bs);
        Assert.Empty(again.FailedBlocks);
        Assert.Equal(again.Device.Pattern(103), again.Device.Read(dst[3]));
    }
}
