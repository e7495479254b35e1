using System.Runtime.InteropServices;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// The CUDA driver API (libcuda.so.1), bound with source-generated imports. The runtime loads the
/// library on the first call, so a machine without a driver only fails when the CUDA path is
/// chosen (<see cref="DllNotFoundException"/>, turned into a clear error by <see cref="CudaDevice"/>).
/// Every function returns a CUresult (0 = CUDA_SUCCESS).
/// </summary>
internal static unsafe partial class CudaMethods
{
    private const string Lib = "libcuda.so.1";

    public const int CuMemHostRegisterPortable = 0x01;
    public const int CuIpcMemLazyEnablePeerAccess = 0x01;
    public const int PointerAttributeDeviceOrdinal = 9;
    public const int PointerAttributeIsLegacyIpcCapable = 10;
    public const int ErrorHostMemoryAlreadyRegistered = 712;

    [LibraryImport(Lib, EntryPoint = "cuInit")]
    public static partial int Init(uint flags);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGet")]
    public static partial int DeviceGet(out int device, int ordinal);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetCount")]
    public static partial int DeviceGetCount(out int count);

    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRetain")]
    public static partial int DevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    public static partial int DevicePrimaryCtxRelease(int device);

    [LibraryImport(Lib, EntryPoint = "cuCtxSetCurrent")]
    public static partial int CtxSetCurrent(nint context);

    [LibraryImport(Lib, EntryPoint = "cuCtxPushCurrent_v2")]
    public static partial int CtxPushCurrent(nint context);

    [LibraryImport(Lib, EntryPoint = "cuCtxPopCurrent_v2")]
    public static partial int CtxPopCurrent(out nint context);

    [LibraryImport(Lib, EntryPoint = "cuStreamCreate")]
    public static partial int StreamCreate(out nint stream, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")]
    public static partial int StreamDestroy(nint stream);

    [LibraryImport(Lib, EntryPoint = "cuStreamSynchronize")]
    public static partial int StreamSynchronize(nint stream);

    /// <summary>CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING: a waiting thread sleeps instead of spinning.</summary>
    public const uint EventBlockingNoTiming = 0x1 | 0x2;

    [LibraryImport(Lib, EntryPoint = "cuEventCreate")]
    public static partial int EventCreate(out nint evt, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuEventRecord")]
    public static partial int EventRecord(nint evt, nint stream);

    [LibraryImport(Lib, EntryPoint = "cuEventSynchronize")]
    public static partial int EventSynchronize(nint evt);

    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")]
    public static partial int EventDestroy(nint evt);

    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    public static partial int MemcpyDtoHAsync(void* dst, ulong src, nuint bytes, nint stream);

    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    public static partial int MemcpyHtoDAsync(ulong dst, void* src, nuint bytes, nint stream);

    [LibraryImport(Lib, EntryPoint = "cuMemHostRegister_v2")]
    public static partial int MemHostRegister(void* p, nuint bytes, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuMemHostUnregister")]
    public static partial int MemHostUnregister(void* p);

    [LibraryImport(Lib, EntryPoint = "cuPointerGetAttribute")]
    public static partial int PointerGetAttribute(void* data, int attribute, ulong pointer);

    [LibraryImport(Lib, EntryPoint = "cuMemGetAddressRange_v2")]
    public static partial int MemGetAddressRange(out ulong allocationBase, out nuint allocationBytes, ulong pointer);

    [LibraryImport(Lib, EntryPoint = "cuIpcGetMemHandle")]
    public static partial int IpcGetMemHandle(out CudaIpcMemHandle handle, ulong allocationBase);

    [LibraryImport(Lib, EntryPoint = "cuIpcOpenMemHandle_v2")]
    public static partial int IpcOpenMemHandle(out ulong pointer, CudaIpcMemHandle handle, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuIpcCloseMemHandle")]
    public static partial int IpcCloseMemHandle(ulong pointer);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetPCIBusId")]
    public static partial int DeviceGetPciBusId(byte* busId, int length, int device);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetByPCIBusId")]
    public static partial int DeviceGetByPciBusId(out int device, byte* busId);

    [LibraryImport(Lib, EntryPoint = "cuGetErrorString")]
    public static partial int GetErrorString(int error, out nint text);

    /// <summary>The driver's text for a CUresult.</summary>
    public static string Describe(int error)
    {
        try
        {
            if (GetErrorString(error, out nint p) == 0 && p != 0) return $"CUDA error {error}: {Marshal.PtrToStringUTF8(p)}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return $"CUDA error {error}";
    }
}
