namespace FlexKv.Core.Index;

public sealed partial class BlockIndex
{
    /// <summary>Called with each SSD slot that loses its block (the journal must forget it).</summary>
    public Action<int>? SsdSlotFreed { get; set; }

    /// <summary>SSD blocks evicted since creation.</summary>
    public long SsdEvictions { get; private set; }

    /// <summary>SSD slots in use (0 without an SSD tier).</summary>
    public int SsdUsedSlots => _ssdSlots is null ? 0 : _ssdSlots.Capacity - _ssdSlots.FreeCount;

    /// <summary>SSD slots in total (0 without an SSD tier).</summary>
    public int SsdCapacity => _ssdSlots?.Capacity ?? 0;

    /// <summary>Adds the SSD tier's slot pool (before any block is inserted).</summary>
    public void AttachSsd(SlotPool ssdSlots) => _ssdSlots = ssdSlots;

    /// <summary>The SSD state of a node.</summary>
    public SsdState SsdStateOf(int node) => _nodes[node].Ssd;

    /// <summary>The SSD slot of a node (-1 if none).</summary>
    public int SsdSlotOf(int node) => _nodes[node].SsdSlot;

    /// <summary>The parent of a node (-1 for a first block).</summary>
    public int ParentOf(int node) => _nodes[node].Parent;

    /// <summary>The key of a node.</summary>
    public UInt128 KeyOf(int node) => _nodes[node].Key;

    /// <summary>
    /// Starts writing a CPU-ready block to SSD: takes an SSD slot (evicting LRU SSD leaves other
    /// than its parent), marks it writing and pins it so its CPU copy stays until the write ends.
    /// Refused when the parent has no SSD copy, which keeps the SSD tier prefix-closed and so
    /// restorable after a restart.
    /// </summary>
    public bool TryBeginSsdWrite(int node, out int ssdSlot)
    {
        ssdSlot = -1;
        ref BlockNode n = ref _nodes[node];
        if (_ssdSlots is null || n.Ssd != SsdState.None || n.State != BlockState.Ready) return false;
        if (n.Parent >= 0 && _nodes[n.Parent].Ssd == SsdState.None) return false;
        AddPin(node);
        while (!_ssdSlots.TryAllocate(out ssdSlot))
        {
            if (!TryEvict(_ssdPolicy, _nodes[node].Parent, ssd: true))
            {
                Unpin(node);
                return false;
            }
        }
        n = ref _nodes[node];
        n.Ssd = SsdState.Writing;
        n.SsdSlot = ssdSlot;
        if (n.Parent >= 0) _nodes[n.Parent].SsdChildren++;
        return true;
    }

    /// <summary>Ends an SSD write: readable on success, SSD copy dropped on failure; unpins.</summary>
    public void CompleteSsdWrite(int node, bool ok)
    {
        ref BlockNode n = ref _nodes[node];
        if (n.Ssd != SsdState.Writing) throw new InvalidOperationException($"block node {node} is not being written to SSD");
        if (ok) n.Ssd = SsdState.Ready;
        else DropSsdCopy(node);
        Unpin(node);
    }

    /// <summary>Drops a block's SSD copy (a failed checksum or read): it is never read again.</summary>
    public void DropSsd(int node)
    {
        if (_nodes[node].Ssd == SsdState.None) return;
        DropSsdCopy(node);
        if (IsRemovable(in _nodes[node])) Remove(node);
    }

    /// <summary>
    /// Gives an SSD-only block a CPU slot to be read into (it is then also cached in CPU): state
    /// Writing, pinned once (released by <see cref="CompleteWrite"/>). False when no CPU slot can
    /// be freed.
    /// </summary>
    public bool TryPromote(int node, long clock, out int slot)
    {
        slot = -1;
        ref BlockNode n = ref _nodes[node];
        if (n.State != BlockState.Empty || n.Ssd != SsdState.Ready) return false;
        return TryTakeCpuSlot(node, clock, out slot);
    }

    /// <summary>
    /// Restores a block found on SSD at start-up (parents first): SSD copy only. Returns the node,
    /// or -1 when the key is already present.
    /// </summary>
    public int InsertFromSsd(UInt128 key, int parent, int ssdSlot, long clock)
    {
        int id = InsertDetached(key, parent, clock);
        if (id < 0) return -1;
        _nodes[id].Ssd = SsdState.Ready;
        _nodes[id].SsdSlot = ssdSlot;
        if (parent >= 0) _nodes[parent].SsdChildren++;
        return id;
    }

    // A node with no copy yet, linked under its parent; the caller says where the block is.
    private int InsertDetached(UInt128 key, int parent, long clock)
    {
        if (_map.ContainsKey(key)) return -1;
        int id = NewNode();
        ref BlockNode n = ref _nodes[id];
        uint generation = n.Generation;
        n = default;
        n.Key = key;
        n.Parent = parent;
        n.ChildHint = -1;
        n.Slot = -1;
        n.SsdSlot = -1;
        n.LastUse = clock;
        n.State = BlockState.Empty;
        n.Generation = generation;
        _map.Add(key, id);
        if (parent >= 0)
        {
            _nodes[parent].Children++;
            _nodes[parent].ChildHint = id;
        }
        return id;
    }

    /// <summary>Makes every evictable block a candidate (after bulk inserts).</summary>
    public void RefreshCandidates() => RebuildCandidates();

    private void DropSsdCopy(int id)
    {
        ref BlockNode n = ref _nodes[id];
        int slot = n.SsdSlot;
        n.Ssd = SsdState.None;
        n.SsdSlot = -1;
        if (slot >= 0)
        {
            _ssdSlots!.Free(slot);
            SsdSlotFreed?.Invoke(slot);
        }
        if (n.Parent >= 0 && --_nodes[n.Parent].SsdChildren == 0) OfferIfEvictable(n.Parent);
    }
}
