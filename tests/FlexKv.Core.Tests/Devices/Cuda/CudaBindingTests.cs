using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FlexKv.Core.Devices.Cuda;
using FlexKv.Core.Errors;

namespace FlexKv.Core.Tests.Cuda;

/// <summary>The CUDA driver bindings: struct layouts the driver reads, and clean failure without a driver.</summary>
public class CudaBindingTests
{
    private static readonly bool HasDriver = NativeLibrary.TryLoad("libcuda.so.1", out _);

    [Fact]
    public void DriverStructs_HaveTheDriversSizes()
    {
        Assert.Equal(64, Unsafe.SizeOf<CudaIpcMemHandle>()); // CU_IPC_HANDLE_SIZE
        Assert.Equal(24, Marshal.SizeOf<CudaBatchCopy.Attributes>()); // order, 2 x CUmemLocation, flags
    }

    [Fact]
    public void BatchCopy_IsOnlyAvailableWithADriver()
    {
        if (!HasDriver) Assert.False(CudaBatchCopy.Available);
    }

    [Fact]
    public void IpcExport_NullPointer_IsInvalidArgumentWithoutTouchingTheDriver()
    {
        var ex = Assert.Throws<FlexKvException>(() => CudaIpcExport.Describe(0));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public unsafe void IpcExport_HostPointer_IsRefusedClearly()
    {
        byte* host = stackalloc byte[64];

        var ex = Assert.Throws<FlexKvException>(() => CudaIpcExport.Describe((ulong)host));

        Assert.Equal(HasDriver ? FlexKvStatus.InvalidArgument : FlexKvStatus.NotSupported, ex.Status);
        Assert.Contains(HasDriver ? "not CUDA device memory" : "libcuda.so.1", ex.Message);
    }

    [Fact]
    public void CudaDevice_WithoutADriver_IsNotSupportedNamingTheLibrary()
    {
        if (HasDriver) return; // with a driver, opening device 0 is the GPU check's business
        var ex = Assert.Throws<FlexKvException>(() => new CudaDevice(0));
        Assert.Equal(FlexKvStatus.NotSupported, ex.Status);
        Assert.Contains("libcuda.so.1", ex.Message);
    }
}
