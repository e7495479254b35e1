using FlexKv.Core.Transfer;
namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// The CPU pool page-locked for DMA with cuMemHostRegister (portable: every context and GPU of
/// the process may use it), registered in 1 GiB chunks because very large single registrations
/// fail on some drivers. One per engine, however many GPUs copy to and from the pool.
/// </summary>
internal sealed unsafe class PinnedHostMemory : IDisposable
{
    private const long Chunk = 1L << 30;
    private readonly CudaDevice _device;
    private readonly byte* _base;
    private long _registered;

    /// <summary>Pins the pool through GPU <paramref name="ordinal"/>'s primary context, which it keeps for its lifetime.</summary>
    public PinnedHostMemory(int ordinal, byte* hostBase, long bytes)
    {
        var device = new CudaDevice(ordinal);
        _device = device;
        _base = hostBase;
        using var scope = device.Enter();
        try
        {
            for (; _registered < bytes; _registered += Chunk)
                CudaDevice.Check(CudaMethods.MemHostRegister(hostBase + _registered, (nuint)Math.Min(Chunk, bytes - _registered),
                    CudaMethods.CuMemHostRegisterPortable), "cuMemHostRegister (CPU pool)");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_registered == 0)
        {
            _device.Dispose();
            return;
        }
        using (_device.Enter())
            for (long off = 0; off < _registered; off += Chunk) CudaMethods.MemHostUnregister(_base + off);
        _registered = 0;
        _device.Dispose();
    }
}
