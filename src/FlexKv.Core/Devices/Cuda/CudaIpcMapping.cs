using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// The engine side of CUDA IPC: maps another process's KV cache allocations into this process
/// (each distinct allocation once: layers usually share a few large ones) and rewrites the
/// layers' bases to the mapped addresses. Closing unmaps them; the memory stays the worker's.
/// </summary>
internal sealed unsafe class CudaIpcMapping : IDisposable
{
    private readonly CudaDevice _device;
    private readonly List<ulong> _opened = new();

    /// <summary>Opens the allocations of <paramref name="handles"/> (one per layer) on their GPU.</summary>
    public CudaIpcMapping(CudaDevice device, ReadOnlySpan<CudaIpcDesc> handles, Span<KvLayerDesc> layers)
    {
        if (handles.Length != layers.Length)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{handles.Length} IPC handles for {layers.Length} layers");
        _device = device;
        using var scope = device.Enter(); // the registering thread's current context is restored after
        var byHandle = new Dictionary<string, ulong>();
        try
        {
            for (int i = 0; i < handles.Length; i++)
            {
                string key = Convert.ToHexString(handles[i].Handle);
                if (!byHandle.TryGetValue(key, out ulong mapped))
                {
                    int rc = CudaMethods.IpcOpenMemHandle(out mapped, handles[i].Handle, CudaMethods.CuIpcMemLazyEnablePeerAccess);
                    if (rc != 0)
                        throw new FlexKvException(FlexKvStatus.InvalidArgument,
                            $"layer {i}: cannot map the worker's KV cache (cuIpcOpenMemHandle: {CudaMethods.Describe(rc)}); " +
                            "the worker must run on this machine, as the same user, and keep the tensor alive");
                    _opened.Add(mapped);
                    byHandle.Add(key, mapped);
                }
                layers[i].Base = mapped + handles[i].Offset;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Finds the GPU a worker named by PCI bus id, whatever its ordinal in this process.</summary>
    public static CudaDevice OpenDevice(in CudaIpcDesc desc)
    {
        int ordinal;
        CudaIpcDesc.BusId id = desc.PciBusId;
        ReadOnlySpan<byte> text = id;
        if (text.IndexOf((byte)0) <= 0)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "the PCI bus id is empty or not NUL-terminated");
        byte* bus = stackalloc byte[CudaIpcDesc.BusIdBytes];
        text.CopyTo(new Span<byte>(bus, CudaIpcDesc.BusIdBytes));
        try
        {
            CudaDevice.Check(CudaMethods.Init(0), "cuInit");
            CudaDevice.Check(CudaMethods.DeviceGetByPciBusId(out ordinal, bus), "cuDeviceGetByPCIBusId");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new FlexKvException(FlexKvStatus.NotSupported,
                $"the CUDA copy path needs the NVIDIA driver (libcuda.so.1), which this machine does not have: {e.Message}", e);
        }
        return new CudaDevice(ordinal);
    }

    public void Dispose()
    {
        if (_opened.Count == 0) return;
        using var scope = _device.Enter();
        foreach (ulong p in _opened) CudaMethods.IpcCloseMemHandle(p);
        _opened.Clear();
    }
}
