namespace FlexKv.Core.Index;

/// <summary>The index's side of the lower tiers: which ones hold a block, their slots, writes, reads and eviction.</summary>
internal sealed partial class BlockIndex
{
    /// <summary>The most lower tiers an index holds (one bit each in a node).</summary>
    public const int MaxTiers = 8;

    /// <summary>
    /// Adds the next lower tier (hot to cold) before any block is inserted and returns its number:
    /// an owned tier with <paramref name="slots"/>, or a hint tier with none.
    /// </summary>
    public int AddTier(SlotPool? slots, Metrics.MetricTier label = Metrics.MetricTier.None)
    {
        if (_tiers.Length == MaxTiers) throw new InvalidOperationException($"at most {MaxTiers} lower tiers");
        if (_map.Count > 0) throw new InvalidOperationException("tiers are added before any block");
        int t = _tiers.Length;
        var copies = new TierCopies(t, slots, _nodes.Length, label);
        Array.Resize(ref _tiers, t + 1);
        _tiers[t] = copies;
        if (copies.Owned) _ownedMask |= copies.Bit;
        return t;
    }

    /// <summary>Called with each slot of tier <paramref name="tier"/> that loses its block.</summary>
    public void OnTierSlotFreed(int tier, Action<int> freed) => _tiers[tier].SlotFreed = freed;

    /// <summary>Tier <paramref name="tier"/>'s copy of a node.</summary>
    public TierCopy TierCopyOf(int node, int tier)
    {
        ref readonly BlockNode n = ref _nodes[node];
        byte bit = _tiers[tier].Bit;
        return (n.Ready & bit) != 0 ? TierCopy.Ready : (n.Writing & bit) != 0 ? TierCopy.Writing : TierCopy.None;
    }

    /// <summary>The first tier (hot to cold) a node is readable from, or -1.</summary>
    public int FirstReadableTier(int node)
    {
        byte ready = _nodes[node].Ready;
        for (int t = 0; t < _tiers.Length; t++)
            if ((ready & _tiers[t].Bit) != 0) return t;
        return -1;
    }

    /// <summary>The slot of a node's copy in an owned tier (-1 if none).</summary>
    public int TierSlotOf(int node, int tier) => _tiers[tier].Slot[node];

    /// <summary>Slots in use in an owned tier (0 for a hint tier).</summary>
    public int TierUsedSlots(int tier) => _tiers[tier].Slots is { } s ? s.Capacity - s.FreeCount : 0;

    /// <summary>Slots of an owned tier (0 for a hint tier).</summary>
    public int TierCapacity(int tier) => _tiers[tier].Slots?.Capacity ?? 0;

    /// <summary>Blocks evicted from a tier since creation.</summary>
    public long TierEvictions(int tier) => _tiers[tier].Evictions;

    /// <summary>The parent of a node (-1 for a first block).</summary>
    public int ParentOf(int node) => _nodes[node].Parent;

    /// <summary>The key of a node.</summary>
    public UInt128 KeyOf(int node) => _nodes[node].Key;

    /// <summary>
    /// Starts writing a CPU-ready block to an owned tier (write-through): takes a slot there
    /// (evicting that tier's LRU leaves other than the parent), marks it writing and pins it so
    /// its CPU copy stays until the write ends. Refused when the parent has no copy in the tier,
    /// which keeps the tier prefix-closed and so restorable after a restart.
    /// </summary>
    public bool TryBeginTierWrite(int node, int tier, out int slot)
    {
        AssertOwned();
        slot = -1;
        TierCopies t = _tiers[tier];
        ref BlockNode n = ref _nodes[node];
        if (!t.Owned || ((n.Ready | n.Writing) & t.Bit) != 0 || n.State != BlockState.Ready) return false;
        if (n.Parent >= 0 && ((_nodes[n.Parent].Ready | _nodes[n.Parent].Writing) & t.Bit) == 0) return false;
        AddPin(node);
        while (!t.Slots!.TryAllocate(out slot))
        {
            if (!TryEvict(t.Policy, _nodes[node].Parent, t))
            {
                Unpin(node);
                return false;
            }
        }
        n = ref _nodes[node];
        n.Writing |= t.Bit;
        t.Slot[node] = slot;
        if (n.Parent >= 0) t.Children[n.Parent]++;
        return true;
    }

    /// <summary>Ends a write to an owned tier: readable on success, the copy dropped on failure; unpins.</summary>
    public void CompleteTierWrite(int node, int tier, bool ok)
    {
        AssertOwned();
        TierCopies t = _tiers[tier];
        ref BlockNode n = ref _nodes[node];
        if ((n.Writing & t.Bit) == 0) throw new InvalidOperationException($"block node {node} is not being written to tier {tier}");
        if (ok)
        {
            n.Writing &= (byte)~t.Bit;
            n.Ready |= t.Bit;
            Emit(Events.KvEventKind.Stored, t.Label, node);
        }
        else DropTierCopyOf(node, t);
        Unpin(node);
    }

    /// <summary>
    /// Drops a node's copy in a tier (a failed read or checksum, or a hint that was wrong): it is
    /// never read there again; <paramref name="cause"/> is remembered for lookups. A node left with no copy goes.
    /// </summary>
    public void DropTierCopy(int node, int tier, RemovalCause cause = RemovalCause.Dropped)
    {
        AssertOwned();
        DropTierCopyOf(node, _tiers[tier]);
        RememberRemoval(_nodes[node].Key, cause); // also when children keep the node: it may be readable nowhere now
        if (IsRemovable(in _nodes[node])) Remove(node);
    }

    /// <summary>
    /// Gives a block with no CPU copy but a readable lower-tier copy a CPU slot to be read into
    /// (it is then also cached in CPU): state Writing, pinned once (released by
    /// <see cref="CompleteWrite"/>). False when no CPU slot can be freed.
    /// </summary>
    public bool TryPromote(int node, long clock, out int slot)
    {
        slot = -1;
        ref BlockNode n = ref _nodes[node];
        if (n.State != BlockState.Empty || n.Ready == 0) return false;
        return TryTakeCpuSlot(node, clock, out slot);
    }

    /// <summary>
    /// Restores a block an owned tier holds at start-up (parents first): a copy in that tier only.
    /// Returns the node, or -1 when the key is already present.
    /// </summary>
    public int InsertFromTier(int tier, UInt128 key, int parent, int slot, long clock)
    {
        TierCopies t = _tiers[tier];
        int id = InsertDetached(key, parent, clock);
        if (id < 0) return -1;
        _nodes[id].Ready = t.Bit;
        t.Slot[id] = slot;
        if (parent >= 0) t.Children[parent]++;
        return id;
    }

    /// <summary>
    /// Records a block a hint tier said it holds beyond the local prefix, under
    /// <paramref name="parent"/> (-1: a run found after vLLM's own hit), pinned once for the match
    /// that found it. It holds no local copy, so it leaves the index when unpinned unless a load
    /// gave it a CPU copy.
    /// </summary>
    public int InsertHint(int tier, UInt128 key, int parent, long clock)
    {
        int id = InsertDetached(key, parent, clock);
        if (id < 0) return -1;
        _nodes[id].Ready = _tiers[tier].Bit; // what a lookup said, not a change this engine made: no event
        _nodes[id].Pins = 1;
        TotalPins++;
        return id;
    }

    // A node with no copy yet, linked under its parent; the caller says where the block is.
    private int InsertDetached(UInt128 key, int parent, long clock)
    {
        AssertOwned();
        if (_map.Find(key, _nodes) >= 0) return -1;
        int id = NewNode();
        ref BlockNode n = ref _nodes[id];
        uint generation = n.Generation;
        n = default;
        n.Key = key;
        n.Parent = parent;
        n.ChildHint = -1;
        n.Slot = -1;
        n.LastUse = clock;
        n.State = BlockState.Empty;
        n.Generation = generation;
        _hashes?.Forget(id);
        _map.Add(key, id);
        foreach (TierCopies t in _tiers) t.Slot[id] = -1;
        if (parent >= 0)
        {
            _nodes[parent].Children++;
            _nodes[parent].ChildHint = id;
        }
        return id;
    }

    /// <summary>Makes every evictable block a candidate (after bulk inserts).</summary>
    public void RefreshCandidates() => RebuildCandidates();
}
