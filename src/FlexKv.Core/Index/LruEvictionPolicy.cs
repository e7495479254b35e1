namespace FlexKv.Core.Index;

/// <summary>
/// Least-recently-used leaves first: a min-heap on (last use, arrival). Entries are not removed
/// when a node is touched again; the index skips entries whose last use or generation no longer
/// matches, so a touch is O(log n) and nothing is searched.
/// </summary>
internal sealed class LruEvictionPolicy : IEvictionPolicy
{
    private readonly PriorityQueue<(int Node, uint Gen, long LastUse, long Seq), (long LastUse, long Seq)> _heap = new();
    private long _seq;
    private long _takenSeq;

    public int Count => _heap.Count;

    public void OnCandidate(int node, uint generation, long lastUse)
    {
        long seq = _seq++;
        _heap.Enqueue((node, generation, lastUse, seq), (lastUse, seq));
    }

    public bool TryTake(out int node, out uint generation, out long lastUse)
    {
        if (_heap.TryDequeue(out var e, out _))
        {
            (node, generation, lastUse, _takenSeq) = e;
            return true;
        }
        node = -1; generation = 0; lastUse = 0;
        return false;
    }

    // Keeps the original arrival order, so a kept block does not jump behind its peers.
    public void Return(int node, uint generation, long lastUse) =>
        _heap.Enqueue((node, generation, lastUse, _takenSeq), (lastUse, _takenSeq));

    public void Clear() => _heap.Clear();
}
