using FlexKv.Core.Errors;

namespace FlexKv.Core.Cuda;

/// <summary>
/// One GPU's primary context, opened on demand. Without libcuda.so.1, without a GPU or with a
/// bad ordinal the constructor throws <see cref="FlexKvStatus.NotSupported"/> with what is
/// missing; nothing is touched at library load.
/// </summary>
internal sealed class CudaDevice : IDisposable
{
    public CudaDevice(int ordinal)
    {
        try
        {
            Check(CudaMethods.Init(0), "cuInit");
            Check(CudaMethods.DeviceGetCount(out int count), "cuDeviceGetCount");
            if (ordinal < 0 || ordinal >= count)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"CUDA device {ordinal} does not exist ({count} visible)");
            Check(CudaMethods.DeviceGet(out int device, ordinal), "cuDeviceGet");
            Check(CudaMethods.DevicePrimaryCtxRetain(out nint ctx, device), "cuDevicePrimaryCtxRetain");
            Ordinal = ordinal;
            Device = device;
            Context = ctx;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new FlexKvException(FlexKvStatus.NotSupported,
                $"the CUDA copy path needs the NVIDIA driver (libcuda.so.1), which this machine does not have: {e.Message}", e);
        }
    }

    public int Device { get; }

    /// <summary>The ordinal it was opened with (in this process's CUDA_VISIBLE_DEVICES numbering).</summary>
    public int Ordinal { get; }

    public nint Context { get; private set; }

    /// <summary>Makes the context current on the calling thread (each copy thread calls this once).</summary>
    public void MakeCurrent() => Check(CudaMethods.CtxSetCurrent(Context), "cuCtxSetCurrent");

    /// <summary>For release paths, which must not throw: whether the context could be made current.</summary>
    public bool TryMakeCurrent() => Context != 0 && CudaMethods.CtxSetCurrent(Context) == 0;

    public static void Check(int result, string what)
    {
        if (result != 0)
            throw new FlexKvException(result == 100 ? FlexKvStatus.NotSupported : FlexKvStatus.IoError, // 100: no device
                $"{what} failed: {CudaMethods.Describe(result)}");
    }

    public void Dispose()
    {
        if (Context == 0) return; // released once, however many owners dispose it
        Context = 0;
        CudaMethods.DevicePrimaryCtxRelease(Device);
    }
}
