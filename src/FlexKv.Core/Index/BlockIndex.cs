using System.Runtime.CompilerServices;

namespace FlexKv.Core.Index;

/// <summary>
/// The block index over all tiers: per block key, its node (CPU slot and state, which lower
/// tiers hold it, pins, recency) in a prefix tree kept implicitly through parent links and child
/// counts. Lower tiers (see <see cref="TierCopies"/>) are added by number, hot to cold.
///
/// Invariants: a node's parent is always present (prefix-closed), except for a run found in a
/// hint tier after vLLM's own hit. Each tier evicts on its own and only its leaves (blocks with
/// no child in that tier), never pinned or writing ones; a node with no copy left in the CPU or
/// an owned tier and no children leaves the index. A match walks keys from the first block and
/// stops at the first block that is ready in no tier. Nodes live by value in one array addressed
/// by int ids with a free list, so steady-state use allocates nothing. Not thread-safe: the
/// engine lock serialises calls.
/// </summary>
internal sealed partial class BlockIndex
{
    private readonly NodeTable _map;
    private readonly SlotPool _slots;
    private readonly IEvictionPolicy _policy;
    private TierCopies[] _tiers = [];
    private byte _ownedMask; // bits of the tiers that keep their copies (slots, prefix-closed)
    private BlockNode[] _nodes;
    private int _freeHead = -1; // free nodes below the high-water mark, chained through Parent
    private int _highWater;
    private long _clock;

    /// <summary>Creates an index whose blocks occupy slots of <paramref name="slots"/>.</summary>
    public BlockIndex(SlotPool slots)
    {
        _slots = slots;
        _policy = new LruEvictionPolicy();
        // Sized for the common case up front: growing a large index means rehashing it mid-flight.
        int initial = (int)Math.Min((long)slots.Capacity + 16, 1 << 18);
        _nodes = new BlockNode[initial];
        // Fresh large arrays arrive as untouched zero pages; the first requests would pay one
        // page fault per 4 KiB of index (milliseconds for a large index). Touch them at creation
        // (the key table clears its own).
        Array.Fill(_nodes, default);
        // The key table starts small and doubles (a rehash costs about what the node array's
        // doubling copies): a small table stays in cache, which is what inserts pay for.
        _map = new NodeTable(Math.Min(initial, 1 << 14));
    }

    /// <summary>The lock every change must hold (the engine's); null for an index owned by one caller (a replay).</summary>
    internal object? Owner { get; set; }

    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertOwned() => Engine.LockOwner.Holds(Owner, "the block index");

    /// <summary>Blocks present in any state.</summary>
    public int Count => _map.Count;

    /// <summary>Slots in use.</summary>
    public int UsedSlots => _slots.Capacity - _slots.FreeCount;

    /// <summary>Total slots.</summary>
    public int Capacity => _slots.Capacity;

    /// <summary>Blocks evicted since creation.</summary>
    public long Evictions { get; private set; }

    /// <summary>Sum of pins over all nodes (0 when no task holds blocks).</summary>
    public long TotalPins { get; private set; }

    /// <summary>Advances the logical clock; one tick per match or put.</summary>
    public long Tick() => ++_clock;

    /// <summary>Read access to a node.</summary>
    internal ref readonly BlockNode Node(int id) => ref _nodes[id];

    /// <summary>The node of a key, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lookup(UInt128 key) => _map.Find(key, _nodes);

    /// <summary>
    /// The node of <paramref name="key"/>, trying the child <paramref name="parent"/> saw
    /// inserted last before the hash map: prompts extend chains, so walking a chain mostly
    /// follows hints and costs one memory access per block instead of three.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lookup(UInt128 key, int parent)
    {
        if (parent >= 0)
        {
            int h = _nodes[parent].ChildHint;
            if (h >= 0)
            {
                ref readonly BlockNode c = ref _nodes[h];
                if (c.Key == key && c.State != BlockState.Free) return h;
            }
        }
        return _map.Find(key, _nodes);
    }

    /// <summary>Whether node <paramref name="id"/> still holds <paramref name="key"/> since generation <paramref name="generation"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsSame(int id, uint generation, UInt128 key)
    {
        ref readonly BlockNode n = ref _nodes[id];
        return n.Generation == generation && n.State != BlockState.Free && n.Key == key;
    }

    /// <summary>The generation of a node (changes when the node is freed).</summary>
    public uint GenerationOf(int id) => _nodes[id].Generation;

    /// <summary>The slot of a node.</summary>
    public int SlotOf(int node) => _nodes[node].Slot;

    /// <summary>The state of a node.</summary>
    public BlockState StateOf(int node) => _nodes[node].State;

    /// <summary>
    /// Longest run of leading <paramref name="keys"/> that are ready; touches them at
    /// <paramref name="clock"/> and writes their node ids to <paramref name="nodes"/>.
    /// </summary>
    public int MatchReady(ReadOnlySpan<UInt128> keys, Span<int> nodes, long clock)
    {
        int n = 0, prev = -1;
        while (n < keys.Length)
        {
            int id = Lookup(keys[n], prev);
            if (id < 0 || !IsReadable(in _nodes[id])) break;
            Touch(id, clock);
            nodes[n++] = id;
            prev = id;
        }
        return n;
    }

    /// <summary>
    /// Touches a node at <paramref name="clock"/>. Its eviction candidacy is keyed by last use,
    /// so an evictable node is offered again (its old entry is now stale and would be skipped).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Touch(int node, long clock)
    {
        ref BlockNode n = ref _nodes[node];
        n.LastUse = clock;
        if (n.CpuChildren != 0 && (n.Ready & _ownedMask) == 0) return; // an inner block of a CPU chain: the common case
        OfferIfEvictable(node);
    }

    /// <summary>Offers the last node of a walk to the eviction policy if it is an evictable leaf.</summary>
    public void TouchDone(int lastNode)
    {
        if (lastNode >= 0) OfferIfEvictable(lastNode);
    }

    /// <summary>Adds a pin: the node can be neither evicted nor dropped until unpinned.</summary>
    public void Pin(int node) => AddPin(node);

    /// <summary>CPU slots held by pinned blocks: what no eviction can free right now.</summary>
    public int PinnedCpuSlots { get; private set; }

    private void AddPin(int node)
    {
        AssertOwned();
        ref BlockNode n = ref _nodes[node];
        if (n.Pins == 0 && n.Slot >= 0) PinnedCpuSlots++;
        n.Pins++;
        TotalPins++;
    }

    /// <summary>Removes a pin; an unpinned leaf becomes evictable again.</summary>
    public void Unpin(int node)
    {
        AssertOwned();
        ref BlockNode n = ref _nodes[node];
        if (n.Pins <= 0) throw new InvalidOperationException($"block node {node} unpinned more often than pinned");
        n.Pins--;
        TotalPins--;
        if (n.Pins == 0 && n.Slot >= 0) PinnedCpuSlots--;
        if (n.Pins == 0)
        {
            if (IsRemovable(in n)) Remove(node);
            else OfferIfEvictable(node);
        }
    }

    /// <summary>
    /// Inserts <paramref name="key"/> under <paramref name="parent"/> (-1 for a first block) in
    /// state <see cref="BlockState.Writing"/>, pinned once, with a free slot; evicts LRU leaves
    /// other than <paramref name="parent"/> when no slot is free. Returns -1 when nothing fits.
    /// </summary>
    public int InsertWriting(UInt128 key, int parent, long clock)
    {
        AssertOwned();
        if (!TryAllocateSlot(parent, out int slot)) return -1;
        int id = NewNode();
        ref BlockNode n = ref _nodes[id];
        n.Key = key;
        n.Parent = parent;
        n.Children = 0;
        n.CpuChildren = 0;
        n.ChildHint = -1;
        n.Slot = slot;
        n.Ready = 0;
        n.Writing = 0;
        n.Pins = 1;
        n.LastUse = clock;
        n.State = BlockState.Writing;
        TotalPins++;
        PinnedCpuSlots++;
        _hashes?.Forget(id);
        _map.Add(key, id);
        foreach (TierCopies t in _tiers) t.Slot[id] = -1;
        if (parent >= 0)
        {
            _nodes[parent].Children++;
            _nodes[parent].CpuChildren++;
            _nodes[parent].ChildHint = id;
        }
        return id;
    }

    /// <summary>Gives an <see cref="BlockState.Empty"/> node a slot again and marks it writing (pinned once).</summary>
    public bool TryRewrite(int node, long clock)
    {
        ref BlockNode n = ref _nodes[node];
        if (n.State != BlockState.Empty) throw new InvalidOperationException($"block node {node} is {n.State}, not Empty");
        return TryTakeCpuSlot(node, clock, out _);
    }

    // Gives a node without a CPU copy a slot to be written into: pinned first (evicting its last
    // child must not remove it), then state Writing, pinned once for the writer.
    private bool TryTakeCpuSlot(int node, long clock, out int slot)
    {
        AddPin(node);
        if (!TryAllocateSlot(_nodes[node].Parent, out slot))
        {
            Unpin(node);
            return false;
        }
        ref BlockNode n = ref _nodes[node];
        n.Slot = slot;
        PinnedCpuSlots++;
        n.State = BlockState.Writing;
        n.LastUse = clock;
        if (n.Parent >= 0) _nodes[n.Parent].CpuChildren++;
        return true;
    }

    /// <summary>Ends a write: ready on success; on failure the slot is freed and the block is dropped.</summary>
    public void CompleteWrite(int node, bool ok)
    {
        AssertOwned();
        ref BlockNode n = ref _nodes[node];
        if (n.State != BlockState.Writing) throw new InvalidOperationException($"block node {node} is {n.State}, not Writing");
        if (ok)
        {
            n.State = BlockState.Ready;
            Emit(Events.KvEventKind.Stored, Metrics.MetricTier.Cpu, node);
        }
        else DropCpuCopy(node);
        Unpin(node);
    }

    /// <summary>Drops every block and frees every slot. The caller guarantees no pins remain.</summary>
    public void Clear()
    {
        AssertOwned();
        EmitCleared();
        _hashes?.Clear();
        _map.Clear();
        Array.Clear(_nodes, 0, _highWater);
        foreach (TierCopies t in _tiers) t.Clear(_highWater);
        _highWater = 0;
        _freeHead = -1;
        _slots.Reset();
        _policy.Clear();
        _removed?.Clear();
        _lastOffered = -1;
        TotalPins = 0;
        PinnedCpuSlots = 0;
    }
}
