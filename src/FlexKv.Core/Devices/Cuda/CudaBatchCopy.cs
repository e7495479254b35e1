using System.Runtime.InteropServices;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// The driver's batched copy (cuMemcpyBatchAsync, CUDA 12.8+): one call submits every span of
/// a batch instead of one call per span. Looked up once; older drivers lack the symbol and the
/// transport issues one cuMemcpyAsync per span instead. The unversioned symbol keeps its 12.8
/// signature (with failIdx) in later drivers; CUDA 13's new signature is cuMemcpyBatchAsync_v2.
/// </summary>
internal static unsafe class CudaBatchCopy
{
    private const int SrcAccessOrderStream = 1;

    /// <summary>CUmemcpyAttributes: source access order, two CUmemLocation hints, flags.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Attributes
    {
        public int SrcAccessOrder;
        public int SrcLocationType, SrcLocationId;
        public int DstLocationType, DstLocationId;
        public uint Flags;
    }

    private static readonly delegate* unmanaged<ulong*, ulong*, nuint*, nuint, Attributes*, nuint*, nuint, nuint*, nint, int> s_batch =
        Resolve();

    /// <summary>Whether the driver has the batched copy.</summary>
    public static bool Available => s_batch != null;

    private static delegate* unmanaged<ulong*, ulong*, nuint*, nuint, Attributes*, nuint*, nuint, nuint*, nint, int> Resolve()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out nint lib) || !NativeLibrary.TryGetExport(lib, "cuMemcpyBatchAsync", out nint f))
            return null;
        return (delegate* unmanaged<ulong*, ulong*, nuint*, nuint, Attributes*, nuint*, nuint, nuint*, nint, int>)f;
    }

    /// <summary>
    /// Submits <paramref name="count"/> copies on <paramref name="stream"/> (not the legacy default
    /// stream), reading sources in stream order. Returns the CUresult.
    /// </summary>
    public static int Submit(ulong* dsts, ulong* srcs, nuint* sizes, int count, nint stream)
    {
        var attrs = new Attributes { SrcAccessOrder = SrcAccessOrderStream };
        nuint first = 0, failIndex = nuint.MaxValue;
        return s_batch(dsts, srcs, sizes, (nuint)count, &attrs, &first, 1, &failIndex, stream);
    }
}
