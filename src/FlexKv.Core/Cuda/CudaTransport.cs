using FlexKv.Core.Transfer;

namespace FlexKv.Core.Cuda;

/// <summary>
/// Copies blocks between a KV cache in GPU memory and the (page-locked) CPU pool with the
/// driver's asynchronous copies: one per contiguous span, on a stream per copy thread
/// (device→host and host→device on separate streams), then one synchronize per batch. The
/// device pointers are this process's own, or another process's mapped through CUDA IPC
/// (an IPC mapping, closed with the transport).
/// </summary>
internal sealed unsafe class CudaTransport : IDeviceTransport, IDisposable
{
    private readonly CudaDevice _device;
    private readonly IDisposable? _mapping;
    private readonly ThreadLocal<(nint D2H, nint H2D)> _streams;

    public CudaTransport(CudaDevice device, KvLayout layout, IDisposable? mapping = null)
    {
        _device = device;
        _mapping = mapping;
        Layout = layout;
        _streams = new ThreadLocal<(nint, nint)>(() =>
        {
            _device.MakeCurrent();
            CudaDevice.Check(CudaMethods.StreamCreate(out nint d2h, 1), "cuStreamCreate");
            CudaDevice.Check(CudaMethods.StreamCreate(out nint h2d, 1), "cuStreamCreate");
            return (d2h, h2d);
        }, trackAllValues: true);
    }

    public KvLayout Layout { get; }

    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        // Tensor-parallel ranks sit on different GPUs and one copy thread serves them all, so the
        // thread's current context is set on every batch (a few hundred nanoseconds).
        _device.MakeCurrent();
        var (d2h, h2d) = _streams.Value;
        nint stream = direction == TransferDirection.DeviceToHost ? d2h : h2d;
        KvLayerDesc[] layers = Layout.Layers;
        int failures = 0;
        for (int i = 0; i < deviceBlocks.Length; i++)
        {
            int b = deviceBlocks[i];
            if (failed[i] != 0) continue;
            if ((uint)b >= (uint)Layout.NumDeviceBlocks) { failed[i] = 1; failures++; continue; }
            byte* host = hostBase + cpuSlots[i] * hostStride;
            for (int l = 0; l < layers.Length; l++)
            {
                ref readonly KvLayerDesc d = ref layers[l];
                ulong dev = d.Base + (ulong)(b * d.BlockStride);
                for (int kv = 0; kv < d.NumKv; kv++, host += d.SpanBytes, dev += (ulong)d.KvStride)
                {
                    int rc = direction == TransferDirection.DeviceToHost
                        ? CudaMethods.MemcpyDtoHAsync(host, dev, (nuint)d.SpanBytes, stream)
                        : CudaMethods.MemcpyHtoDAsync(dev, host, (nuint)d.SpanBytes, stream);
                    if (rc != 0 && failed[i] == 0) { failed[i] = 1; failures++; }
                }
            }
        }
        if (CudaMethods.StreamSynchronize(stream) != 0)
        {
            // The batch's state is unknown: every block of it is failed (a load is recomputed).
            failed.Fill(1);
            return deviceBlocks.Length;
        }
        return failures;
    }

    public void Dispose()
    {
        _device.MakeCurrent();
        foreach (var (a, b) in _streams.Values)
        {
            CudaMethods.StreamDestroy(a);
            CudaMethods.StreamDestroy(b);
        }
        _streams.Dispose();
        _mapping?.Dispose();
        _device.Dispose();
    }
}
