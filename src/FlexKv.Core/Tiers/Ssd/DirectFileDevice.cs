using System.Runtime.InteropServices;
using FlexKv.Core.Errors;
using FlexKv.Core.Memory;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Slots striped round-robin over one preallocated file per directory: slot s lives in file
/// s % n at offset (s / n) * extent. Files are opened with O_DIRECT (through open(2), wrapped in
/// a SafeFileHandle); a filesystem that refuses O_DIRECT gets buffered I/O and a warning.
/// Neighbouring slots of one file are read or written with one preadv/pwritev.
/// </summary>
public sealed unsafe class DirectFileDevice : IBlockDevice
{
    /// <summary>O_DIRECT alignment of offsets, lengths and buffers.</summary>
    public const int Alignment = 4096;
    private const int MaxIovecs = 64;
    // Larger single calls stop paying off and hurt on some virtual disks (measured: 2-4 MiB
    // calls beat 16+ MiB ones), so a coalesced run stops at this size.
    private const long MaxRunBytes = 4L << 20;
    private readonly SafeFileHandle[] _files;
    private readonly int[] _fds;

    /// <summary>Opens (creating and preallocating as needed) the cache files.</summary>
    public DirectFileDevice(IReadOnlyList<string> directories, int numSlots, long blockBytes, Action<string>? warn = null,
        bool direct = true)
    {
        if (numSlots < 1) throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'ssd_cache_gb': holds no block");
        NumSlots = numSlots;
        ExtentBytes = (blockBytes + Alignment - 1) / Alignment * Alignment;
        int n = directories.Count;
        _files = new SafeFileHandle[n];
        _fds = new int[n];
        Direct = direct;
        try
        {
            for (int d = 0; d < n; d++)
            {
                string path = Path.Combine(directories[d], "flexkv-blocks.dat");
                long slots = (numSlots - d + n - 1) / n;
                int flags = LibcMethods.ORdwr | LibcMethods.OCreat | LibcMethods.OCloexec;
                int fd = LibcMethods.Open(path, Direct ? flags | LibcMethods.ODirect : flags, 0x180);
                if (fd < 0 && Direct && Marshal.GetLastPInvokeError() == LibcMethods.Einval)
                {
                    Direct = false;
                    warn?.Invoke($"'{directories[d]}' does not support O_DIRECT; using buffered I/O (the page cache will hold SSD blocks too)");
                    fd = LibcMethods.Open(path, flags, 0x180);
                }
                if (fd < 0)
                    throw new FlexKvException(FlexKvStatus.InvalidConfig,
                        $"configuration key 'ssd_cache_dir': cannot open '{path}' (errno {Marshal.GetLastPInvokeError()})");
                _fds[d] = fd;
                _files[d] = new SafeFileHandle(fd, ownsHandle: true);
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                int rc = LibcMethods.PosixFallocate(fd, 0, slots * ExtentBytes);
                if (rc != 0)
                    throw new FlexKvException(rc == LibcMethods.Enospc ? FlexKvStatus.OutOfMemory : FlexKvStatus.IoError,
                        $"configuration key 'ssd_cache_gb': cannot reserve {slots * ExtentBytes} bytes in '{path}' (errno {rc}); lower ssd_cache_gb");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public int NumSlots { get; }

    /// <inheritdoc />
    public long ExtentBytes { get; }

    /// <inheritdoc />
    public bool Direct { get; private set; }

    /// <inheritdoc />
    public void Read(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors) =>
        Run(slots, buffers, bytes, errors, write: false);

    /// <inheritdoc />
    public void Write(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors) =>
        Run(slots, buffers, bytes, errors, write: true);

    private void Run(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors, bool write)
    {
        int n = _fds.Length;
        long len = Direct ? ExtentBytes : bytes; // O_DIRECT moves whole aligned extents
        LibcMethods.Iovec* iov = stackalloc LibcMethods.Iovec[MaxIovecs];
        int i = 0;
        while (i < slots.Length)
        {
            // A run: same file, consecutive offsets.
            int file = slots[i] % n;
            int j = i + 1;
            while (j < slots.Length && j - i < MaxIovecs && (j - i + 1) * len <= MaxRunBytes && slots[j] == slots[j - 1] + n) j++;
            for (int k = i; k < j; k++)
            {
                iov[k - i].Base = (void*)buffers[k];
                iov[k - i].Length = (nuint)len;
            }
            long offset = (long)(slots[i] / n) * ExtentBytes;
            int err = Transfer(_fds[file], iov, j - i, offset, len * (j - i), write);
            for (int k = i; k < j; k++) errors[k] = err;
            i = j;
        }
    }

    private static int Transfer(int fd, LibcMethods.Iovec* iov, int count, long offset, long total, bool write)
    {
        nint done = write ? LibcMethods.Pwritev(fd, iov, count, offset) : LibcMethods.Preadv(fd, iov, count, offset);
        if (done < 0) return Marshal.GetLastPInvokeError();
        return done == total ? 0 : 5; // a short transfer is an I/O error (EIO) for every block in it
    }

    /// <summary>Closes the files; idempotent.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f?.Dispose();
    }
}
