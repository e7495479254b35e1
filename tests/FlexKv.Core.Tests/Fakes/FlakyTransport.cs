using FlexKv.Core.Transfer;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Fakes;

/// <summary>
/// Fault injection for the device path: wraps <see cref="HostMemoryTransport"/> and fails the
/// chosen device block ids (their bytes are not copied), or throws for a whole batch.
/// Set the faults before launching; copy threads only read them.
/// </summary>
internal sealed unsafe class FlakyTransport(KvLayout layout) : IDeviceTransport
{
    private readonly HostMemoryTransport _inner = new(layout);
    private volatile HashSet<int> _failing = [];

    public KvLayout Layout => _inner.Layout;

    /// <summary>When set, every Copy throws (the transfer engine must turn that into failures).</summary>
    public volatile bool ThrowOnCopy;

    /// <summary>Number of Copy calls seen.</summary>
    public int Calls;

    public void FailBlocks(params int[] deviceBlocks) => _failing = [.. deviceBlocks];

    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        Interlocked.Increment(ref Calls);
        if (ThrowOnCopy) throw new IOException("injected device failure");
        HashSet<int> failing = _failing;
        int failures = 0;
        for (int i = 0; i < deviceBlocks.Length; i++)
        {
            if (failing.Contains(deviceBlocks[i]))
            {
                failed[i] = 1;
                failures++;
                continue;
            }
            failures += _inner.Copy(direction, deviceBlocks.Slice(i, 1), cpuSlots.Slice(i, 1), hostBase, hostStride, failed.Slice(i, 1));
        }
        return failures;
    }
}
