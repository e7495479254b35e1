using System.Runtime.InteropServices;
using FlexKv.Core.Errors;

namespace FlexKv.Core.Memory;

/// <summary>
/// One large page-aligned anonymous mapping (the CPU pool). Pages are committed on first touch,
/// so a big pool costs nothing until blocks are written; with the huge-page hint the kernel backs
/// it with 2 MiB pages where transparent huge pages are enabled.
/// </summary>
internal sealed unsafe class NativeRegion : IDisposable
{
    private static long s_totalBytes;
    private nint _base;

    /// <summary>Maps <paramref name="bytes"/> bytes (rounded up to 2 MiB).</summary>
    public NativeRegion(long bytes, bool hugePages)
    {
        if (bytes <= 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"region size must be > 0, got {bytes}");
        const long align = 2L << 20;
        Length = (bytes + align - 1) / align * align;
        nint p = LibcMethods.Mmap(0, (nuint)Length, LibcMethods.ProtRead | LibcMethods.ProtWrite,
            LibcMethods.MapPrivate | LibcMethods.MapAnonymous | LibcMethods.MapNoReserve, -1, 0);
        if (p == LibcMethods.MapFailed || p == 0)
            throw new FlexKvException(FlexKvStatus.OutOfMemory,
                $"could not map {Length} bytes for the CPU cache (errno {Marshal.GetLastPInvokeError()}); lower cpu_cache_gb");
        _base = p;
        // The hint is best effort: without THP support madvise fails and small pages are used.
        if (hugePages) HugePagesHinted = LibcMethods.Madvise(p, (nuint)Length, LibcMethods.MadvHugepage) == 0;
        Interlocked.Add(ref s_totalBytes, Length);
    }

    /// <summary>Bytes mapped by all live regions of this process (accounting).</summary>
    public static long TotalBytes => Interlocked.Read(ref s_totalBytes);

    /// <summary>Start of the region.</summary>
    public byte* Base => (byte*)_base;

    /// <summary>Mapped length in bytes.</summary>
    public long Length { get; }

    /// <summary>Whether the kernel accepted the huge-page hint.</summary>
    public bool HugePagesHinted { get; }

    /// <summary>Unmaps the region; idempotent.</summary>
    public void Dispose()
    {
        nint p = Interlocked.Exchange(ref _base, 0);
        if (p == 0) return;
        LibcMethods.Munmap(p, (nuint)Length);
        Interlocked.Add(ref s_totalBytes, -Length);
    }
}
