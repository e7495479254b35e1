namespace FlexKv.Core.Index;

/// <summary>
/// Least-recently-used leaves first, ordered by (last use, arrival). Entries are not removed
/// when a node is touched again; the index skips entries whose last use or generation no longer
/// matches, so nothing is searched. An entry is two longs (node and generation; last use and
/// arrival packed in one priority, unique per entry).
/// <para>
/// Most candidates arrive in priority order: a touch offers its leaf at the current tick, which
/// is at least every earlier one, and arrival grows. Those go to a FIFO ring, O(1) both ways.
/// The others (a parent offered when its last child was evicted, keeping its older last use; a
/// block unpinned long after its last use; a kept candidate put back) go to a min-heap, which
/// stays small because they are near the front anyway. <see cref="TryTake"/> takes the smaller
/// of the two fronts, so the order is exactly that of one heap over every entry.
/// </para>
/// </summary>
internal sealed class LruEvictionPolicy : IEvictionPolicy
{
    // Arrival only orders candidates of one tick (a whole chain touched by one call): 24 bits
    // keep that order unless a tick offers 16 M candidates; last use keeps 40 bits (10^12 ticks).
    private const int SeqBits = 24;
    private const long SeqMask = (1L << SeqBits) - 1;
    private readonly PriorityQueue<long, long> _heap = new();
    private long[] _ringElement = new long[1024];
    private long[] _ringPriority = new long[1024];
    private int _head, _count; // the ring's first entry and its length (capacity a power of two)
    private long _ringLast = long.MinValue; // priority of the ring's last entry
    private long _seq;
    private long _taken; // priority of the entry taken last

    public int Count => _count + _heap.Count;

    public void OnCandidate(int node, uint generation, long lastUse) =>
        Add(Element(node, generation), (lastUse << SeqBits) | (_seq++ & SeqMask));

    public bool TryTake(out int node, out uint generation, out long lastUse)
    {
        long e;
        bool fromHeap = _heap.TryPeek(out long he, out long hp);
        if (_count > 0 && (!fromHeap || _ringPriority[_head] < hp))
        {
            e = _ringElement[_head];
            _taken = _ringPriority[_head];
            _head = (_head + 1) & (_ringElement.Length - 1);
            if (--_count == 0) _ringLast = long.MinValue;
        }
        else if (fromHeap)
        {
            _heap.Dequeue();
            e = he;
            _taken = hp;
        }
        else
        {
            node = -1; generation = 0; lastUse = 0;
            return false;
        }
        node = (int)(uint)e;
        generation = (uint)(e >>> 32);
        lastUse = _taken >> SeqBits;
        return true;
    }

    // Keeps the original arrival order, so a kept block does not jump behind its peers.
    public void Return(int node, uint generation, long lastUse) =>
        Add(Element(node, generation), (lastUse << SeqBits) | (_taken & SeqMask));

    public void Clear()
    {
        _heap.Clear();
        _head = _count = 0;
        _ringLast = long.MinValue;
    }

    private void Add(long element, long priority)
    {
        if (priority <= _ringLast)
        {
            _heap.Enqueue(element, priority);
            return;
        }
        if (_count == _ringElement.Length) Grow();
        int at = (_head + _count) & (_ringElement.Length - 1);
        _ringElement[at] = element;
        _ringPriority[at] = priority;
        _count++;
        _ringLast = priority;
    }

    // Doubles the ring, its entries moved to the front in order.
    private void Grow()
    {
        int n = _ringElement.Length;
        var elements = new long[2 * n];
        var priorities = new long[2 * n];
        int first = n - _head;
        Array.Copy(_ringElement, _head, elements, 0, first);
        Array.Copy(_ringElement, 0, elements, first, _head);
        Array.Copy(_ringPriority, _head, priorities, 0, first);
        Array.Copy(_ringPriority, 0, priorities, first, _head);
        _ringElement = elements;
        _ringPriority = priorities;
        _head = 0;
    }

    private static long Element(int node, uint generation) => (long)((ulong)generation << 32 | (uint)node);
}
