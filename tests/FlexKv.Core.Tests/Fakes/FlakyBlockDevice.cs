using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Tests.Fakes;

/// <summary>
/// Wraps a real block device and injects failures: an errno for chosen slots on read or write,
/// ENOSPC for every write once <see cref="DiskFull"/> is set, or corrupted bytes after a read.
/// </summary>
internal sealed unsafe class FlakyBlockDevice(IBlockDevice inner) : IBlockDevice
{
    public HashSet<int> FailReads { get; } = new();
    public HashSet<int> FailWrites { get; } = new();
    public HashSet<int> CorruptReads { get; } = new();
    public volatile bool DiskFull;
    public int Writes;

    public int NumSlots => inner.NumSlots;
    public long ExtentBytes => inner.ExtentBytes;
    public bool Direct => inner.Direct;

    public void Read(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors)
    {
        inner.Read(slots, buffers, bytes, errors);
        for (int i = 0; i < slots.Length; i++)
        {
            lock (FailReads) if (FailReads.Contains(slots[i])) errors[i] = 5;
            lock (CorruptReads) if (CorruptReads.Contains(slots[i])) ((byte*)buffers[i])[0] ^= 0xFF;
        }
    }

    public void Write(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors)
    {
        Interlocked.Add(ref Writes, slots.Length);
        if (DiskFull)
        {
            errors.Fill(28);
            return;
        }
        inner.Write(slots, buffers, bytes, errors);
        for (int i = 0; i < slots.Length; i++)
            lock (FailWrites) if (FailWrites.Contains(slots[i])) errors[i] = 5;
    }

    public void Dispose() => inner.Dispose();
}
