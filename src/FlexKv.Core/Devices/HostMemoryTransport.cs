using FlexKv.Core.Transfer;
namespace FlexKv.Core.Devices;

/// <summary>
/// Same-process host memory (vLLM's CPU backend, tests): plain memcpy of each span between the
/// registered tensors and the block-major CPU slot, where layer l's spans follow layer l-1's.
/// </summary>
internal sealed unsafe class HostMemoryTransport(KvLayout layout) : IDeviceTransport
{
    /// <inheritdoc />
    public KvLayout Layout { get; } = layout;

    /// <inheritdoc />
    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        KvLayerDesc[] layers = Layout.Layers;
        int numDevice = Layout.NumDeviceBlocks;
        int failures = 0;
        for (int i = 0; i < deviceBlocks.Length; i++)
        {
            int b = deviceBlocks[i];
            if (failed[i] != 0) continue; // its bytes never reached the CPU slot (a failed SSD read)
            if ((uint)b >= (uint)numDevice) { failed[i] = (byte)BlockFailure.CopyFailed; failures++; continue; }
            byte* host = hostBase + cpuSlots[i] * hostStride;
            for (int l = 0; l < layers.Length; l++)
            {
                ref readonly KvLayerDesc d = ref layers[l];
                byte* dev = (byte*)d.Base + b * d.BlockStride;
                for (int kv = 0; kv < d.NumKv; kv++, host += d.SpanBytes, dev += d.KvStride)
                {
                    if (direction == TransferDirection.DeviceToHost)
                        StreamingCopy.Copy(dev, host, d.SpanBytes);
                    else
                        StreamingCopy.Copy(host, dev, d.SpanBytes);
                }
            }
        }
        StreamingCopy.Fence(); // the completion that follows must publish these bytes
        return failures;
    }
}
