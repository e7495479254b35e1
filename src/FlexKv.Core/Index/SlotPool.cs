namespace FlexKv.Core.Index;

/// <summary>
/// Free list of fixed-size slot ids 0..Capacity-1 (a stack: recently freed slots are reused
/// first, which keeps their pages warm). Not thread-safe: the index's lock guards it.
/// </summary>
public sealed class SlotPool
{
    private readonly int[] _free;
    private int _count;

    /// <summary>Creates a pool with every slot free.</summary>
    public SlotPool(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _free = new int[capacity];
        for (int i = 0; i < capacity; i++) _free[i] = capacity - 1 - i;
        _count = capacity;
    }

    /// <summary>Total slots.</summary>
    public int Capacity => _free.Length;

    /// <summary>Slots currently free.</summary>
    public int FreeCount => _count;

    /// <summary>Takes a free slot, or returns false when none is left.</summary>
    public bool TryAllocate(out int slot)
    {
        if (_count == 0) { slot = -1; return false; }
        slot = _free[--_count];
        return true;
    }

    /// <summary>Returns a slot; a double free is a bug and throws.</summary>
    public void Free(int slot)
    {
        if ((uint)slot >= (uint)_free.Length || _count == _free.Length)
            throw new InvalidOperationException($"slot {slot} freed twice or out of range");
        _free[_count++] = slot;
    }

    /// <summary>Marks every slot free again.</summary>
    public void Reset()
    {
        int n = _free.Length;
        for (int i = 0; i < n; i++) _free[i] = n - 1 - i;
        _count = n;
    }
}
