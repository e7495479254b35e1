using System.Runtime.InteropServices;
using FlexKv.Core.Memory;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Inspection;

/// <summary>
/// The SSD tier's data files opened for reading only, for checking a cache without touching it:
/// <see cref="DirectFileDevice"/> opens them read-write, creates and preallocates them, which an
/// inspection must never do. Slots are where <see cref="DirectFileDevice"/> puts them (slot s in
/// the file of directory s % n at offset (s / n) * extent); reads bypass the page cache where
/// the filesystem allows it, so checking a large cache does not evict the machine's page cache.
/// A missing or unreadable file makes each of its reads fail with its errno.
/// </summary>
internal sealed unsafe class ReadOnlyBlockDevice : IBlockDevice
{
    private const int ORdonly = 0;
    private readonly int[] _fds;
    private readonly int[] _openErrors;

    public ReadOnlyBlockDevice(IReadOnlyList<string> directories, int numSlots, long blockBytes)
    {
        NumSlots = numSlots;
        ExtentBytes = (blockBytes + DirectFileDevice.Alignment - 1) / DirectFileDevice.Alignment * DirectFileDevice.Alignment;
        _fds = new int[directories.Count];
        _openErrors = new int[directories.Count];
        Array.Fill(_fds, -1); // never close descriptor 0 for a file not opened yet
        // One mode for all files, since a read's length depends on it (O_DIRECT: whole extents):
        // buffered when any file refuses O_DIRECT (tmpfs, some network filesystems).
        Direct = OpenAll(directories, LibcMethods.ODirect);
        if (!Direct) OpenAll(directories, 0);
    }

    // Opens every file with the extra flags; false (all closed) when one refused them with EINVAL.
    private bool OpenAll(IReadOnlyList<string> directories, int flags)
    {
        for (int d = 0; d < directories.Count; d++)
        {
            _fds[d] = LibcMethods.Open(Path.Combine(directories[d], "flexkv-blocks.dat"), ORdonly | LibcMethods.OCloexec | flags, 0);
            _openErrors[d] = _fds[d] < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (_fds[d] < 0 && _openErrors[d] == LibcMethods.Einval && flags != 0)
            {
                Dispose();
                return false;
            }
        }
        return true;
    }

    public int NumSlots { get; }

    public long ExtentBytes { get; }

    public bool Direct { get; }

    public void Read(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors)
    {
        int n = _fds.Length;
        long len = Direct ? ExtentBytes : bytes;
        for (int i = 0; i < slots.Length; i++)
        {
            int file = slots[i] % n;
            if (_fds[file] < 0) { errors[i] = _openErrors[file]; continue; }
            var iov = new LibcMethods.Iovec { Base = (void*)buffers[i], Length = (nuint)len };
            nint done = LibcMethods.Preadv(_fds[file], &iov, 1, (long)(slots[i] / n) * ExtentBytes);
            errors[i] = done < 0 ? Marshal.GetLastPInvokeError() : done == len ? 0 : LibcMethods.Eio; // short: a truncated file
        }
    }

    public void Write(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors) =>
        throw new InvalidOperationException("an inspection never writes the SSD cache");

    public void Dispose()
    {
        for (int d = 0; d < _fds.Length; d++)
        {
            if (_fds[d] >= 0) LibcMethods.Close(_fds[d]);
            _fds[d] = -1;
        }
    }
}
