namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The writes of one queue batch on their way to disk (<see cref="SsdWriter"/>): sorted by file,
/// then by offset, and cut into runs that one I/O thread each seals and writes. The batch is
/// committed (journaled, reported) once its last run ended and every batch before it was
/// committed. Reused: the arrays are sized once for the largest batch.
/// </summary>
internal sealed class SsdWriteBatch
{
    public SsdWriteBatch(int capacity)
    {
        Ops = new SsdOp[capacity];
        Order = new long[capacity];
        Slots = new int[capacity];
        Buffers = new nint[capacity];
        Errors = new int[capacity];
    }

    /// <summary>The writes, in disk order once <see cref="Sort"/> ran.</summary>
    public readonly SsdOp[] Ops;

    /// <summary>Per write: its slot and CPU buffer (what the device is handed), its errno (0: written).</summary>
    public readonly int[] Slots;
    public readonly nint[] Buffers;
    public readonly int[] Errors;

    // Sort keys: file first, then the slot's place in it, so a run stays in one file.
    private readonly long[] Order;

    public int Count;

    /// <summary>Runs not ended yet (decremented by the I/O threads).</summary>
    public int PendingRuns;

    public void Clear() => Count = 0;

    public void Add(in SsdOp op)
    {
        Ops[Count] = op;
        Count++;
    }

    /// <summary>Sorts the writes into disk order for <paramref name="stripes"/> files (slot s lives in file s % stripes).</summary>
    public void Sort(int stripes)
    {
        for (int i = 0; i < Count; i++)
        {
            int slot = Ops[i].Slot;
            Order[i] = ((long)(slot % stripes) << 32) | (uint)(slot / stripes);
        }
        Order.AsSpan(0, Count).Sort(Ops.AsSpan(0, Count));
        for (int i = 0; i < Count; i++)
        {
            Slots[i] = Ops[i].Slot;
            Errors[i] = 0;
        }
    }
}
