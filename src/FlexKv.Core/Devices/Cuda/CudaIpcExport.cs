using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// The worker side of CUDA IPC: describes a device pointer of this process so the engine's
/// process can map it. Only memory from cudaMalloc-style allocations can be shared this way;
/// PyTorch's expandable segments and vLLM's sleep mode use virtual-memory allocations, which
/// the driver refuses, so those get an error naming the setting to change.
/// </summary>
internal static unsafe class CudaIpcExport
{
    /// <summary>Describes <paramref name="pointer"/>, a device pointer of this process.</summary>
    public static CudaIpcDesc Describe(ulong pointer)
    {
        if (pointer == 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, "the device pointer is null");
        int ordinal = 0, capable = 0;
        try
        {
            CudaDevice.Check(CudaMethods.Init(0), "cuInit");
            if (CudaMethods.PointerGetAttribute(&ordinal, CudaMethods.PointerAttributeDeviceOrdinal, pointer) != 0)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"0x{pointer:x} is not CUDA device memory of this process");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new FlexKvException(FlexKvStatus.NotSupported,
                $"sharing a CUDA KV cache with the engine needs the NVIDIA driver (libcuda.so.1), which this machine does not have: {e.Message}", e);
        }
        using var device = new CudaDevice(ordinal);
        using var scope = device.Enter(); // the worker's thread: its current context is restored after
        CudaDevice.Check(CudaMethods.PointerGetAttribute(&capable, CudaMethods.PointerAttributeIsLegacyIpcCapable, pointer),
            "cuPointerGetAttribute(IS_LEGACY_CUDA_IPC_CAPABLE)");
        if (capable == 0)
            throw new FlexKvException(FlexKvStatus.NotSupported,
                "the KV cache lives in a virtual-memory allocation, which CUDA IPC cannot share with the engine process: " +
                "run without PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True and without vLLM's sleep mode (enable_sleep_mode)");
        CudaDevice.Check(CudaMethods.MemGetAddressRange(out ulong allocationBase, out _, pointer), "cuMemGetAddressRange");
        var desc = new CudaIpcDesc { Offset = pointer - allocationBase };
        CudaDevice.Check(CudaMethods.IpcGetMemHandle(out desc.Handle, allocationBase), "cuIpcGetMemHandle");
        byte* bus = stackalloc byte[CudaIpcDesc.BusIdBytes];
        new Span<byte>(bus, CudaIpcDesc.BusIdBytes).Clear();
        CudaDevice.Check(CudaMethods.DeviceGetPciBusId(bus, CudaIpcDesc.BusIdBytes - 1, device.Device), "cuDeviceGetPCIBusId");
        new ReadOnlySpan<byte>(bus, CudaIpcDesc.BusIdBytes).CopyTo(desc.PciBusId);
        return desc;
    }
}
