using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FlexKv.Core.Transfer;

/// <summary>
/// Copies of KV spans (tens of KiB to MiB, read once) with non-temporal stores: the destination
/// lines are not read first and do not evict the cache, which is what makes large memcpy fast.
/// Falls back to Buffer.MemoryCopy for small copies and without AVX.
/// Callers issue <see cref="Fence"/> before another thread may read what was copied.
/// </summary>
internal static unsafe class StreamingCopy
{
    private const long MinBytes = 4096;

    public static void Copy(byte* src, byte* dst, long bytes)
    {
        if (!Avx.IsSupported || bytes < MinBytes)
        {
            Buffer.MemoryCopy(src, dst, bytes, bytes);
            return;
        }
        // Head up to the next 32-byte boundary of the destination, then aligned streaming stores.
        long i = (32 - ((nint)dst & 31)) & 31;
        if (i > 0) Buffer.MemoryCopy(src, dst, i, i);
        for (; i + 128 <= bytes; i += 128)
        {
            Vector256<byte> a = Avx.LoadVector256(src + i);
            Vector256<byte> b = Avx.LoadVector256(src + i + 32);
            Vector256<byte> c = Avx.LoadVector256(src + i + 64);
            Vector256<byte> d = Avx.LoadVector256(src + i + 96);
            Avx.StoreAlignedNonTemporal(dst + i, a);
            Avx.StoreAlignedNonTemporal(dst + i + 32, b);
            Avx.StoreAlignedNonTemporal(dst + i + 64, c);
            Avx.StoreAlignedNonTemporal(dst + i + 96, d);
        }
        if (i < bytes) Buffer.MemoryCopy(src + i, dst + i, bytes - i, bytes - i);
    }

    /// <summary>Orders the non-temporal stores before anything this thread writes next.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Fence()
    {
        if (Sse.IsSupported) Sse.StoreFence();
    }
}
