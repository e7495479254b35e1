using FlexKv.Core.Hashing;
using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Contract;

/// <summary>Where a test finds a block: its key, its index node, and its slot in a lower tier.</summary>
internal static class TierKeys
{
    public static UInt128 KeyOf(EngineHarness h, long[] tokens, int block)
    {
        var seq = new HashedSequence();
        seq.Begin(h.Engine.Internals.Hasher.RootSeed);
        seq.Extend(h.Engine.Internals.Hasher, tokens);
        return seq.Keys[block];
    }

    /// <summary>The slot of a block's copy in the tier named <paramref name="tier"/> (-1 if none).</summary>
    public static int SlotIn(EngineHarness h, string tier, long[] tokens, int block)
    {
        var (_, index, tiers) = h.Engine.Internals;
        int node = index.Lookup(KeyOf(h, tokens, block));
        if (node < 0) return -1;
        for (int t = 0; t < tiers.Count; t++)
            if (tiers[t].Name == tier) return index.TierSlotOf(node, t);
        return -1;
    }
}
