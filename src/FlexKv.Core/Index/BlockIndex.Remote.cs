namespace FlexKv.Core.Index;

public sealed partial class BlockIndex
{
    /// <summary>Whether the remote store was said to hold the block.</summary>
    public bool IsRemote(int node) => _nodes[node].Remote;

    /// <summary>
    /// Records a block the remote store holds beyond the local prefix, under
    /// <paramref name="parent"/>, pinned once for the match that found it. It holds no local
    /// copy, so it leaves the index when unpinned unless a load gave it a CPU copy.
    /// </summary>
    public int InsertRemote(UInt128 key, int parent, long clock)
    {
        int id = InsertDetached(key, parent, clock);
        if (id < 0) return -1;
        _nodes[id].Remote = true;
        _nodes[id].Pins = 1;
        TotalPins++;
        return id;
    }

    /// <summary>Gives a remote-only block a CPU slot to be read into (state Writing, pinned once).</summary>
    public bool TryPromoteRemote(int node, long clock, out int slot)
    {
        slot = -1;
        ref BlockNode n = ref _nodes[node];
        if (n.State != BlockState.Empty || !n.Remote) return false;
        return TryTakeCpuSlot(node, clock, out slot);
    }

    /// <summary>Forgets that the remote store holds the block (a read found it missing or corrupt).</summary>
    public void ClearRemote(int node)
    {
        _nodes[node].Remote = false;
        if (IsRemovable(in _nodes[node])) Remove(node);
    }
}
