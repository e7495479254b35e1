using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

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

    /// <summary>Makes the context current on the calling thread: only on FlexKv's own copy threads.</summary>
    public void MakeCurrent() => Check(CudaMethods.CtxSetCurrent(Context), "cuCtxSetCurrent");

    /// <summary>
    /// Makes the context current until the scope ends, then restores the thread's previous one:
    /// for threads that are not ours (vLLM's, which may have another GPU current). Never throws;
    /// if the push fails, the driver calls made in the scope fail and say so.
    /// </summary>
    public ContextScope Enter() => new(Context != 0 && CudaMethods.CtxPushCurrent(Context) == 0);

    /// <summary>Pops the context <see cref="Enter"/> pushed.</summary>
    public readonly ref struct ContextScope(bool pushed)
    {
        public void Dispose()
        {
            if (pushed) CudaMethods.CtxPopCurrent(out _);
        }
    }

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
