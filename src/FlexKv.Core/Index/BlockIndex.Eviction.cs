namespace FlexKv.Core.Index;

public sealed partial class BlockIndex
{
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
    public bool TryEvictOne(int protect) => TryEvict(_policy, protect, ssd: false);

    private bool TryEvict(IEvictionPolicy policy, int protect, bool ssd)
    {
        bool kept = false;
        uint keptGen = 0;
        long keptUse = 0;
        bool evicted = false;
        while (policy.TryTake(out int id, out uint gen, out long lastUse))
        {
            ref BlockNode n = ref _nodes[id];
            bool candidate = ssd ? IsSsdEvictable(in n) : IsEvictable(in n);
            if (n.Generation != gen || n.LastUse != lastUse || !candidate) continue; // stale
            if (id == protect) { kept = true; keptGen = gen; keptUse = lastUse; continue; }
            if (ssd)
            {
                SsdEvictions++;
                DropSsdCopy(id);
            }
            else
            {
                Evictions++;
                DropCpuCopy(id);
            }
            if (IsRemovable(in _nodes[id])) Remove(id);
            evicted = true;
            break;
        }
        if (kept) policy.Return(protect, keptGen, keptUse);
        return evicted;
    }

    private static bool IsReadable(in BlockNode n) => n.State == BlockState.Ready || n.Ssd == SsdState.Ready || n.Remote;

    // A CPU copy may go when no child needs it as a CPU parent, or when the block stays
    // readable from SSD: with an SSD tier the CPU is a cache over it, so even the inner blocks of
    // a chain whose tail is busy can make room.
    private static bool IsEvictable(in BlockNode n) =>
        n.State == BlockState.Ready && n.Pins == 0 && (n.CpuChildren == 0 || n.Ssd == SsdState.Ready);

    private static bool IsSsdEvictable(in BlockNode n) =>
        n.Ssd == SsdState.Ready && n.SsdChildren == 0 && n.Pins == 0;

    private static bool IsRemovable(in BlockNode n) =>
        n.State == BlockState.Empty && n.Ssd == SsdState.None && n.Children == 0 && n.Pins == 0;

    private void OfferIfEvictable(int id)
    {
        ref BlockNode n = ref _nodes[id];
        if (IsEvictable(in n))
        {
            _policy.OnCandidate(id, n.Generation, n.LastUse);
            if (_policy.Count > 4 * _map.Count + 4096) RebuildCandidates();
        }
        if (IsSsdEvictable(in n))
        {
            _ssdPolicy.OnCandidate(id, n.Generation, n.LastUse);
            if (_ssdPolicy.Count > 4 * _map.Count + 4096) RebuildCandidates();
        }
    }

    // Stale heap entries pile up when the same leaves are touched again and again; rebuilding
    // from the live nodes bounds the heaps to a few times the index size.
    private void RebuildCandidates()
    {
        _policy.Clear();
        _ssdPolicy.Clear();
        for (int i = 0; i < _highWater; i++)
        {
            ref BlockNode n = ref _nodes[i];
            if (n.State == BlockState.Free) continue;
            if (IsEvictable(in n)) _policy.OnCandidate(i, n.Generation, n.LastUse);
            if (IsSsdEvictable(in n)) _ssdPolicy.OnCandidate(i, n.Generation, n.LastUse);
        }
    }

    // The CPU copy goes (slot freed, state Empty); the parent may become a CPU leaf.
    private void DropCpuCopy(int id)
    {
        ref BlockNode n = ref _nodes[id];
        if (n.Slot >= 0)
        {
            _slots.Free(n.Slot);
            if (n.Pins > 0) PinnedCpuSlots--;
        }
        n.Slot = -1;
        n.State = BlockState.Empty;
        if (n.Parent >= 0 && --_nodes[n.Parent].CpuChildren == 0) OfferIfEvictable(n.Parent);
    }

    // Removes a node with no copy and no children; a parent left childless becomes a candidate,
    // or goes too when it has no copy either (it only existed to hold its children).
    private void Remove(int id)
    {
        while (id >= 0)
        {
            ref BlockNode n = ref _nodes[id];
            int parent = n.Parent;
            _map.Remove(n.Key);
            n.Slot = -1;
            n.SsdSlot = -1;
            n.State = BlockState.Free;
            n.Ssd = SsdState.None;
            n.Remote = false;
            n.Generation++;
            n.Parent = -1;
            _freeNodes[_freeNodeCount++] = id;
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
        if (_freeNodeCount > 0) return _freeNodes[--_freeNodeCount];
        if (_highWater == _nodes.Length)
        {
            int size = _nodes.Length * 2;
            Array.Resize(ref _nodes, size);
            Array.Resize(ref _freeNodes, size);
        }
        return _highWater++;
    }
}
