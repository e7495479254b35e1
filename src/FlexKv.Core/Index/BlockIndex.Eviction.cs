namespace FlexKv.Core.Index;

internal sealed partial class BlockIndex
{
    private int _lastOffered = -1; // the CPU policy's last candidate, so a repeat is not queued twice
    private uint _lastOfferedGeneration;
    private long _lastOfferedUse;

    private bool TryAllocateSlot(int protect, out int slot)
    {
        while (!_slots.TryAllocate(out slot))
            if (!TryEvictOne(protect)) return false;
        return true;
    }

    /// <summary>
    /// Evicts the CPU copy of the least recently used CPU leaf other than <paramref name="protect"/>;
    /// a block left with no copy and no children leaves the index.
    /// </summary>
    public bool TryEvictOne(int protect) => TryEvict(_policy, protect, null);

    // tier null: the CPU tier.
    private bool TryEvict(IEvictionPolicy policy, int protect, TierCopies? tier)
    {
        bool kept = false;
        uint keptGen = 0;
        long keptUse = 0;
        bool evicted = false;
        while (policy.TryTake(out int id, out uint gen, out long lastUse))
        {
            ref BlockNode n = ref _nodes[id];
            bool candidate = tier is null ? IsEvictable(in n) : IsTierEvictable(id, tier);
            if (n.Generation != gen || n.LastUse != lastUse || !candidate) continue; // stale
            if (id == protect) { kept = true; keptGen = gen; keptUse = lastUse; continue; }
            if (tier is null)
            {
                Evictions++;
                DropCpuCopy(id);
            }
            else
            {
                tier.Evictions++;
                DropTierCopyOf(id, tier);
            }
            if (IsRemovable(in _nodes[id]))
            {
                RememberRemoval(_nodes[id].Key, RemovalCause.Evicted);
                Remove(id);
            }
            evicted = true;
            break;
        }
        if (kept) policy.Return(protect, keptGen, keptUse);
        return evicted;
    }

    private static bool IsReadable(in BlockNode n) => n.State == BlockState.Ready || n.Ready != 0;

    // A CPU copy may go when no child needs it as a CPU parent, or when the block stays
    // readable from an owned tier: the CPU is then a cache over that tier, so even the inner
    // blocks of a chain whose tail is busy can make room.
    private bool IsEvictable(in BlockNode n) =>
        n.State == BlockState.Ready && n.Pins == 0 && (n.CpuChildren == 0 || (n.Ready & _ownedMask) != 0);

    private bool IsTierEvictable(int id, TierCopies t)
    {
        ref readonly BlockNode n = ref _nodes[id];
        return (n.Ready & t.Bit) != 0 && t.Children[id] == 0 && n.Pins == 0;
    }

    // A hint tier's copy does not keep a node: only the CPU and owned tiers hold bytes here.
    private bool IsRemovable(in BlockNode n) =>
        n.State == BlockState.Empty && ((n.Ready | n.Writing) & _ownedMask) == 0 && n.Children == 0 && n.Pins == 0;

    private void OfferIfEvictable(int id)
    {
        ref BlockNode n = ref _nodes[id];
        // The same candidate twice in a row (an eviction offers the parent when its last CPU
        // child goes, then again when the child leaves the index) would only be popped twice.
        if (IsEvictable(in n) && (id != _lastOffered || n.Generation != _lastOfferedGeneration || n.LastUse != _lastOfferedUse))
        {
            _policy.OnCandidate(id, n.Generation, n.LastUse);
            (_lastOffered, _lastOfferedGeneration, _lastOfferedUse) = (id, n.Generation, n.LastUse);
            if (_policy.Count > 4 * _map.Count + 4096) RebuildCandidates();
        }
        if ((n.Ready & _ownedMask) == 0) return;
        foreach (TierCopies t in _tiers)
        {
            if (!t.Owned || !IsTierEvictable(id, t)) continue;
            t.Policy.OnCandidate(id, n.Generation, n.LastUse);
            if (t.Policy.Count > 4 * _map.Count + 4096) RebuildCandidates();
        }
    }

    // Stale heap entries pile up when the same leaves are touched again and again; rebuilding
    // from the live nodes bounds the heaps to a few times the index size.
    private void RebuildCandidates()
    {
        _policy.Clear();
        _lastOffered = -1;
        foreach (TierCopies t in _tiers) t.Policy.Clear();
        for (int i = 0; i < _highWater; i++)
        {
            ref BlockNode n = ref _nodes[i];
            if (n.State == BlockState.Free) continue;
            if (IsEvictable(in n)) _policy.OnCandidate(i, n.Generation, n.LastUse);
            foreach (TierCopies t in _tiers)
                if (t.Owned && IsTierEvictable(i, t)) t.Policy.OnCandidate(i, n.Generation, n.LastUse);
        }
    }

    // The CPU copy goes (slot freed, state Empty); the parent may become a CPU leaf. Only a
    // copy that was readable is an event (a failed write never was).
    private void DropCpuCopy(int id)
    {
        ref BlockNode n = ref _nodes[id];
        if (n.State == BlockState.Ready) Emit(Events.KvEventKind.Removed, Metrics.MetricTier.Cpu, id);
        if (n.Slot >= 0)
        {
            _slots.Free(n.Slot);
            if (n.Pins > 0) PinnedCpuSlots--;
        }
        n.Slot = -1;
        n.State = BlockState.Empty;
        if (n.Parent >= 0 && --_nodes[n.Parent].CpuChildren == 0) OfferIfEvictable(n.Parent);
    }

    // A lower tier's copy goes (its slot freed and reported); the parent may become a leaf there.
    private void DropTierCopyOf(int id, TierCopies t)
    {
        ref BlockNode n = ref _nodes[id];
        bool had = ((n.Ready | n.Writing) & t.Bit) != 0;
        if ((n.Ready & t.Bit) != 0) Emit(Events.KvEventKind.Removed, t.Label, id);
        n.Ready &= (byte)~t.Bit;
        n.Writing &= (byte)~t.Bit;
        if (!t.Owned || !had) return;
        int slot = t.Slot[id];
        t.Slot[id] = -1;
        if (slot >= 0)
        {
            t.Slots!.Free(slot);
            t.SlotFreed?.Invoke(slot);
        }
        if (n.Parent >= 0 && --t.Children[n.Parent] == 0) OfferIfEvictable(n.Parent);
    }

    // Removes a node with no copy and no children; a parent left childless becomes a candidate,
    // or goes too when it has no copy either (it only existed to hold its children).
    private void Remove(int id)
    {
        while (id >= 0)
        {
            ref BlockNode n = ref _nodes[id];
            int parent = n.Parent;
            _map.Remove(n.Key, id);
            n.Slot = -1;
            n.State = BlockState.Free;
            n.Ready = 0;
            n.Writing = 0;
            n.Generation++;
            n.Parent = _freeHead; // a free node's Parent chains the free list
            _freeHead = id;
            id = -1;
            if (parent < 0) break;
            ref BlockNode p = ref _nodes[parent];
            if (--p.Children != 0) break;
            if (IsRemovable(in p)) id = parent;
            else OfferIfEvictable(parent);
        }
    }

    private int NewNode()
    {
        if (_freeHead >= 0)
        {
            int id = _freeHead;
            _freeHead = _nodes[id].Parent;
            return id;
        }
        if (_highWater == _nodes.Length) Resize((int)Math.Min(Array.MaxLength, 2L * _nodes.Length));
        return _highWater++;
    }

    private void Resize(int size)
    {
        Array.Resize(ref _nodes, size);
        foreach (TierCopies t in _tiers) t.Grow(size);
        _hashes?.Grow(size);
    }

    /// <summary>
    /// Makes room for <paramref name="nodes"/> nodes and keys at once (a restore knows how many
    /// blocks it brings): exactly that many, not the next doubling, which at millions of
    /// blocks would leave up to half the arrays unused.
    /// </summary>
    public void EnsureCapacity(int nodes)
    {
        if (nodes > _nodes.Length) Resize(nodes);
        _map.EnsureCapacity(nodes);
    }
}
