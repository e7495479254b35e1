using System.Runtime.InteropServices;
using FlexKv.Core.Errors;
using FlexKv.Core.Memory;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Slots striped round-robin over one preallocated file per directory (sparse without
/// ssd_preallocate): slot s lives in file
/// s % n at offset (s / n) * extent. Files are opened with O_DIRECT (through open(2), wrapped in
/// a SafeFileHandle); a filesystem that refuses O_DIRECT gets buffered I/O and a warning.
/// Neighbouring slots of one file are read or written with one preadv/pwritev.
/// </summary>
internal sealed unsafe class DirectFileDevice : IBlockDevice
{
    /// <summary>O_DIRECT alignment of offsets, lengths and buffers.</summary>
    public const int Alignment = 4096;
    private const int MaxIovecs = 64;
    // Larger single calls stop paying off and hurt on some virtual disks (measured: 2-4 MiB
    // calls beat 16+ MiB ones), so a coalesced run stops at this size.
    public const long MaxRunBytes = 4L << 20;
    private readonly SafeFileHandle[] _files;
    private readonly int[] _fds;
    private readonly string[] _paths;
    private readonly long[] _targetBytes;
    // What each file was before this open (-1: it did not exist), so a failed create can undo it.
    private readonly long[] _originalBytes;
    private readonly bool _preallocate; // false: sparse files, grown to their size without reserving it

    /// <summary>
    /// Opens the cache files, creating them or growing them to the slots they must hold (a larger
    /// file is cut only by <see cref="TrimToSize"/>, once the engine is up). On failure, what was
    /// created or grown is undone.
    /// </summary>
    public DirectFileDevice(IReadOnlyList<string> directories, int numSlots, long blockBytes, Action<string>? warn = null,
        bool direct = true, bool preallocate = true)
    {
        _preallocate = preallocate;
        if (numSlots < 1) throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'ssd_cache_gb': holds no block");
        NumSlots = numSlots;
        ExtentBytes = SsdSpace.ExtentOf(blockBytes);
        int n = directories.Count;
        _files = new SafeFileHandle[n];
        _fds = new int[n];
        _paths = new string[n];
        _targetBytes = new long[n];
        _originalBytes = new long[n];
        Array.Fill(_originalBytes, -1);
        Direct = direct;
        try
        {
            for (int d = 0; d < n; d++) OpenFile(d, directories[d], warn);
        }
        catch
        {
            Abandon();
            throw;
        }
    }

    private void OpenFile(int d, string dir, Action<string>? warn)
    {
        string path = Path.Combine(dir, SsdSpace.BlocksFile);
        long target;
        try
        {
            target = checked(SsdSpace.SlotsInFile(NumSlots, _paths.Length, d) * ExtentBytes);
        }
        catch (OverflowException)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key 'ssd_cache_gb': the file in '{dir}' would exceed 8 EiB");
        }
        long before = File.Exists(path) ? new FileInfo(path).Length : -1;
        int flags = LibcMethods.ORdwr | LibcMethods.OCreat | LibcMethods.OCloexec;
        int fd = LibcMethods.Open(path, Direct ? flags | LibcMethods.ODirect : flags, 0x180);
        if (fd < 0 && Direct && Marshal.GetLastPInvokeError() == LibcMethods.Einval)
        {
            Direct = false;
            warn?.Invoke($"'{dir}' does not support O_DIRECT; using buffered I/O (the page cache will hold SSD blocks too)");
            fd = LibcMethods.Open(path, flags, 0x180);
        }
        if (fd < 0)
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'ssd_cache_dir': cannot open '{path}' (errno {Marshal.GetLastPInvokeError()})");
        _paths[d] = path;
        _originalBytes[d] = before;
        _targetBytes[d] = target;
        _fds[d] = fd;
        _files[d] = new SafeFileHandle(fd, ownsHandle: true);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        // Also fills holes of a file that is long enough (the space check counted them as needed).
        int rc = _preallocate ? LibcMethods.PosixFallocate(fd, 0, target)
            : before < target && LibcMethods.Ftruncate(fd, target) != 0 ? Marshal.GetLastPInvokeError() : 0;
        if (rc != 0)
            throw new FlexKvException(rc == LibcMethods.Enospc ? FlexKvStatus.OutOfMemory : FlexKvStatus.IoError,
                $"configuration key 'ssd_cache_gb': cannot reserve {target} bytes in '{path}' (errno {rc}); lower ssd_cache_gb");
    }

    /// <summary>Cuts files larger than this size needs (a smaller ssd_cache_gb than last time); the blocks there are gone.</summary>
    public void TrimToSize()
    {
        for (int d = 0; d < _fds.Length; d++)
        {
            if (_originalBytes[d] <= _targetBytes[d]) continue;
            if (LibcMethods.Ftruncate(_fds[d], _targetBytes[d]) != 0)
                throw new FlexKvException(FlexKvStatus.IoError,
                    $"configuration key 'ssd_cache_gb': cannot shrink '{_paths[d]}' to {_targetBytes[d]} bytes (errno {Marshal.GetLastPInvokeError()})");
            _originalBytes[d] = _targetBytes[d];
        }
    }

    /// <summary>
    /// Undoes this open after a failed create (before or after <see cref="Dispose"/>): files it
    /// created are removed, files it grew go back to their size; a cache that was there stays.
    /// </summary>
    public void Abandon()
    {
        Dispose();
        for (int d = 0; d < _paths.Length; d++)
        {
            string? path = _paths[d];
            if (path is null) continue;
            try
            {
                if (_originalBytes[d] < 0) File.Delete(path);
                else if (_originalBytes[d] < _targetBytes[d]) LibcMethods.Truncate(path, _originalBytes[d]);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort while another error is being reported; that error matters more.
            }
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
        return done == total ? 0 : LibcMethods.Eio; // a short transfer is an I/O error (EIO) for every block in it
    }

    /// <summary>Closes the files; idempotent.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f?.Dispose();
    }
}
