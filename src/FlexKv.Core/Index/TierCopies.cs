namespace FlexKv.Core.Index;

/// <summary>
/// What the index keeps about one lower tier's copies, per node id (parallel to the node array,
/// so <see cref="BlockNode"/> stays small and names no tier). An owned tier (SSD, an object
/// store, a test tier) has slots: it keeps what it is given, is prefix-closed (a block is written
/// there only after its parent) so it can be restored after a restart, and evicts its own LRU
/// leaves. A hint tier (a store other engines share and evict, like Redis) has no slots: its
/// copies are what a lookup said, pinned for the match that found them.
/// </summary>
internal sealed class TierCopies
{
    public TierCopies(int bit, SlotPool? slots, int nodes, Metrics.MetricTier label)
    {
        Bit = (byte)(1 << bit);
        Label = label;
        Slots = slots;
        Slot = new int[nodes];
        Children = new int[nodes];
    }

    /// <summary>This tier's bit in <see cref="BlockNode.Ready"/> and <see cref="BlockNode.Writing"/>.</summary>
    public byte Bit { get; }

    /// <summary>The tier's name in metrics and KV events.</summary>
    public Metrics.MetricTier Label { get; }

    /// <summary>The tier's slots (null for a hint tier).</summary>
    public SlotPool? Slots { get; }

    public bool Owned => Slots is not null;

    /// <summary>Per node: the tier slot of its copy, -1 without one (owned tiers).</summary>
    public int[] Slot;

    /// <summary>Per node: children with a copy in this tier; a leaf of the tier has none (owned tiers).</summary>
    public int[] Children;

    public readonly IEvictionPolicy Policy = new LruEvictionPolicy();

    public long Evictions;

    /// <summary>Called with each slot that loses its block (e.g. the SSD journal must forget it first).</summary>
    public Action<int>? SlotFreed;

    public void Grow(int nodes)
    {
        Array.Resize(ref Slot, nodes);
        Array.Resize(ref Children, nodes);
    }

    public void Clear(int highWater)
    {
        Array.Clear(Slot, 0, highWater);
        Array.Clear(Children, 0, highWater);
        Slots?.Reset();
        Policy.Clear();
    }
}
