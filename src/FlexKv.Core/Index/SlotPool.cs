namespace FlexKv.Core.Index;

/// <summary>
/// Slot ids 0..Capacity-1: never-used ids are handed out in order, freed ids are reused first
/// (a stack, so recently freed slots with warm pages go out again). Memory grows with the slots
/// actually used, so a huge capacity (an index-only cache) costs nothing up front. Not
/// thread-safe: the index's owner serialises calls.
/// </summary>
internal sealed class SlotPool
{
    private int[] _free = new int[64];
    private int _freeCount;
    private int _nextFresh;

    /// <summary>Creates a pool with every slot free.</summary>
    public SlotPool(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>Total slots.</summary>
    public int Capacity { get; }

    /// <summary>Slots currently free.</summary>
    public int FreeCount => Capacity - _nextFresh + _freeCount;

    /// <summary>Takes a free slot, or returns false when none is left.</summary>
    public bool TryAllocate(out int slot)
    {
        if (_freeCount > 0) { slot = _free[--_freeCount]; return true; }
        if (_nextFresh < Capacity) { slot = _nextFresh++; return true; }
        slot = -1;
        return false;
    }

    /// <summary>Returns a slot; an id never handed out, or more frees than allocations, throws.</summary>
    public void Free(int slot)
    {
        if ((uint)slot >= (uint)_nextFresh || _freeCount == _nextFresh)
            throw new InvalidOperationException($"slot {slot} freed twice or never allocated");
        if (_freeCount == _free.Length) Array.Resize(ref _free, _free.Length * 2);
        _free[_freeCount++] = slot;
    }

    /// <summary>
    /// On a fresh pool: marks the given slots as taken (blocks restored at start-up); every
    /// other slot stays free.
    /// </summary>
    public void MarkUsed(ReadOnlySpan<bool> used)
    {
        if (_nextFresh != 0 || _freeCount != 0) throw new InvalidOperationException("MarkUsed needs a fresh pool");
        if (used.Length != Capacity) throw new ArgumentException("one flag per slot is needed", nameof(used));
        if (_free.Length < Capacity) _free = new int[Capacity];
        for (int s = Capacity - 1; s >= 0; s--)
            if (!used[s]) _free[_freeCount++] = s;
        _nextFresh = Capacity;
    }

    /// <summary>Marks every slot free again.</summary>
    public void Reset()
    {
        _freeCount = 0;
        _nextFresh = 0;
    }
}
