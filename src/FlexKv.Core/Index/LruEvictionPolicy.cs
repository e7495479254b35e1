namespace FlexKv.Core.Index;

/// <summary>
/// Least-recently-used leaves first: a min-heap on (last use, arrival). Entries are not removed
/// when a node is touched again; the index skips entries whose last use or generation no longer
/// matches, so a touch is O(log n) and nothing is searched. An entry is two longs (node and
/// generation; last use and arrival packed in one priority), so the heap compares plain
/// integers: it is the hot part of every insert into a full index.
/// </summary>
internal sealed class LruEvictionPolicy : IEvictionPolicy
{
    // Arrival only orders candidates of one tick (a whole chain touched by one call): 24 bits
    // keep that order unless a tick offers 16 M candidates; last use keeps 40 bits (10^12 ticks).
    private const int SeqBits = 24;
    private const long SeqMask = (1L << SeqBits) - 1;
    private readonly PriorityQueue<long, long> _heap = new();
    private long _seq;
    private long _taken; // priority of the entry taken last

    public int Count => _heap.Count;

    public void OnCandidate(int node, uint generation, long lastUse) =>
        _heap.Enqueue(Element(node, generation), (lastUse << SeqBits) | (_seq++ & SeqMask));

    public bool TryTake(out int node, out uint generation, out long lastUse)
    {
        if (_heap.TryDequeue(out long e, out _taken))
        {
            node = (int)(uint)e;
            generation = (uint)(e >>> 32);
            lastUse = _taken >> SeqBits;
            return true;
        }
        node = -1; generation = 0; lastUse = 0;
        return false;
    }

    // Keeps the original arrival order, so a kept block does not jump behind its peers.
    public void Return(int node, uint generation, long lastUse) =>
        _heap.Enqueue(Element(node, generation), (lastUse << SeqBits) | (_taken & SeqMask));

    public void Clear() => _heap.Clear();

    private static long Element(int node, uint generation) => (long)((ulong)generation << 32 | (uint)node);
}
