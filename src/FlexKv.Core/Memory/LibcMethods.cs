using System.Runtime.InteropServices;

namespace FlexKv.Core.Memory;

/// <summary>Outbound calls into libc (source-generated, NativeAOT-safe).</summary>
internal static unsafe partial class LibcMethods
{
    private const string Libc = "libc.so.6";

    public const int ProtRead = 0x1, ProtWrite = 0x2;
    public const int MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    public const int MadvHugepage = 14;
    public static readonly nint MapFailed = -1;

    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Libc, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint addr, nuint length, int advice);

    // ---- files (SSD tier) ------------------------------------------------------------------

    public const int ORdonly = 0, OWronly = 0x1, ORdwr = 0x2, OCreat = 0x40, OTrunc = 0x200, ODirect = 0x4000, ODirectory = 0x10000,
        OCloexec = 0x80000;
    public const int LockEx = 2, LockNb = 4, LockUn = 8;
    public const int Enoent = 2, Eio = 5, Einval = 22, Enospc = 28, Ewouldblock = 11;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "posix_fallocate")]
    public static partial int PosixFallocate(int fd, long offset, long length);

    [LibraryImport(Libc, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    [LibraryImport(Libc, EntryPoint = "truncate", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Truncate(string path, long length);

    [LibraryImport(Libc, EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(int fd, int mode);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    // struct statvfs of glibc on LP64 (x86-64, aarch64): f_frsize is the u64 at offset 8, f_bavail at 32.
    [LibraryImport(Libc, EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statvfs(string path, byte* buf);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Libc, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int Fdatasync(int fd);

    [LibraryImport(Libc, EntryPoint = "geteuid")]
    public static partial uint Geteuid();

    // glibc >= 2.33 exports stat(); on x86-64 st_uid is the u32 at offset 28 of a 144-byte struct.
    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Stat(string path, byte* buf);

    [LibraryImport(Libc, EntryPoint = "preadv", SetLastError = true)]
    public static partial nint Preadv(int fd, Iovec* iov, int iovcnt, long offset);

    [LibraryImport(Libc, EntryPoint = "pwritev", SetLastError = true)]
    public static partial nint Pwritev(int fd, Iovec* iov, int iovcnt, long offset);

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Iovec
    {
        public void* Base;
        public nuint Length;
    }

    public const int Eperm = 1, Esrch = 3, Efault = 14;

    [LibraryImport(Libc, EntryPoint = "process_vm_readv", SetLastError = true)]
    public static partial nint ProcessVmReadv(int pid, Iovec* local, nuint localCount, Iovec* remote, nuint remoteCount, nuint flags);

    [LibraryImport(Libc, EntryPoint = "process_vm_writev", SetLastError = true)]
    public static partial nint ProcessVmWritev(int pid, Iovec* local, nuint localCount, Iovec* remote, nuint remoteCount, nuint flags);

    /// <summary>Bytes an unprivileged writer can still allocate on the filesystem of <paramref name="path"/>, or -1.</summary>
    public static long FreeBytesOf(string path)
    {
        byte* buf = stackalloc byte[256];
        if (Statvfs(path, buf) != 0) return -1;
        ulong frsize = *(ulong*)(buf + 8), bavail = *(ulong*)(buf + 32);
        return (long)Math.Min(frsize * (double)bavail, long.MaxValue);
    }

    /// <summary>The device (filesystem) id of a path (st_dev), or null if it cannot be read.</summary>
    public static ulong? DeviceOf(string path)
    {
        byte* buf = stackalloc byte[256];
        if (Stat(path, buf) != 0) return null;
        return *(ulong*)buf;
    }

    /// <summary>Bytes allocated to a file on disk (st_blocks x 512; holes excluded), 0 if it does not exist.</summary>
    public static long AllocatedBytesOf(string path)
    {
        byte* buf = stackalloc byte[256];
        if (Stat(path, buf) != 0) return 0;
        return *(long*)(buf + 64) * 512;
    }

    /// <summary>Owner uid of a path, or -1 if it cannot be read.</summary>
    public static long OwnerOf(string path)
    {
        byte* buf = stackalloc byte[256];
        if (Stat(path, buf) != 0) return -1;
        return *(uint*)(buf + 28);
    }
}
