namespace FlexKv.Core.Index;

public sealed partial class BlockIndex
{
    private bool TryAllocateSlot(int protect, out int slot)
    {
        while (!_slots.TryAllocate(out slot))
            if (!TryEvictOne(protect)) return false;
        return true;
    }

    /// <summary>Evicts the least recently used evictable leaf other than <paramref name="protect"/>.</summary>
    public bool TryEvictOne(int protect)
    {
        bool kept = false;
        uint keptGen = 0;
        long keptUse = 0;
        bool evicted = false;
        while (_policy.TryTake(out int id, out uint gen, out long lastUse))
        {
            ref BlockNode n = ref _nodes[id];
            if (n.Generation != gen || n.LastUse != lastUse || !IsEvictable(in n)) continue; // stale
            if (id == protect) { kept = true; keptGen = gen; keptUse = lastUse; continue; }
            Remove(id);
            Evictions++;
            evicted = true;
            break;
        }
        if (kept) _policy.Return(protect, keptGen, keptUse);
        return evicted;
    }

    private static bool IsEvictable(in BlockNode n) =>
        n.State == BlockState.Ready && n.Children == 0 && n.Pins == 0;

    private void OfferIfEvictable(int id)
    {
        ref BlockNode n = ref _nodes[id];
        if (!IsEvictable(in n)) return;
        _policy.OnCandidate(id, n.Generation, n.LastUse);
        if (_policy.Count > 4 * _map.Count + 4096) RebuildCandidates();
    }

    // Stale heap entries pile up when the same leaves are touched again and again; rebuilding
    // from the live nodes bounds the heap to a few times the index size.
    private void RebuildCandidates()
    {
        _policy.Clear();
        for (int i = 0; i < _highWater; i++)
        {
            ref BlockNode n = ref _nodes[i];
            if (IsEvictable(in n)) _policy.OnCandidate(i, n.Generation, n.LastUse);
        }
    }

    // Removes a node that has no children; a parent left childless becomes a candidate, and an
    // Empty parent (its write failed) goes too, since it only existed to hold its children.
    private void Remove(int id)
    {
        while (id >= 0)
        {
            ref BlockNode n = ref _nodes[id];
            int parent = n.Parent;
            if (n.Slot >= 0) _slots.Free(n.Slot);
            _map.Remove(n.Key);
            n.Slot = -1;
            n.State = BlockState.Free;
            n.Generation++;
            n.Parent = -1;
            _freeNodes[_freeNodeCount++] = id;
            id = -1;
            if (parent < 0) break;
            ref BlockNode p = ref _nodes[parent];
            if (--p.Children != 0) break;
            if (p.State == BlockState.Empty && p.Pins == 0) id = parent;
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
