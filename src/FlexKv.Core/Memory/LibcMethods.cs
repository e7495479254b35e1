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
}
