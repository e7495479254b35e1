using System.Runtime.InteropServices;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tests.Fakes;

/// <summary>
/// A stand-in for vLLM's paged KV cache in native host memory: two layers with separate K and V
/// spans, one in FlashAttention's (2, N, ...) order and one in (N, 2, ...) order, so both stride
/// shapes are exercised. Block bytes = 2 layers * 2 spans * <see cref="SpanBytes"/>.
/// </summary>
internal sealed unsafe class DeviceKvCache : IDisposable
{
    private readonly byte*[] _bases;
    private readonly long[] _sizes;

    public DeviceKvCache(int numBlocks, int spanBytes = 64)
    {
        NumBlocks = numBlocks;
        SpanBytes = spanBytes;
        long layerBytes = 2L * numBlocks * spanBytes;
        _sizes = [layerBytes, layerBytes];
        _bases = [(byte*)NativeMemory.AllocZeroed((nuint)layerBytes), (byte*)NativeMemory.AllocZeroed((nuint)layerBytes)];
        Layers =
        [
            // (2, N, span): all K spans, then all V spans.
            new KvLayerDesc { Base = (ulong)_bases[0], BlockStride = spanBytes, KvStride = (long)numBlocks * spanBytes, SpanBytes = spanBytes, NumKv = 2 },
            // (N, 2, span): K and V of a block side by side.
            new KvLayerDesc { Base = (ulong)_bases[1], BlockStride = 2L * spanBytes, KvStride = spanBytes, SpanBytes = spanBytes, NumKv = 2 },
        ];
    }

    public int NumBlocks { get; }

    public int SpanBytes { get; }

    /// <summary>Bytes of one block over all layers (what the engine's block_bytes must be).</summary>
    public long BlockBytes => 4L * SpanBytes;

    public KvLayerDesc[] Layers { get; }

    /// <summary>The expected content of a block filled with <paramref name="seed"/>, in CPU-slot order.</summary>
    public byte[] Pattern(int seed)
    {
        var bytes = new byte[BlockBytes];
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)((uint)(seed * 2654435761u + (uint)i * 40503u) >> 11);
        return bytes;
    }

    /// <summary>Writes <see cref="Pattern"/>(<paramref name="seed"/>) into device block <paramref name="block"/>.</summary>
    public void Fill(int block, int seed) => Write(block, Pattern(seed));

    public void Write(int block, ReadOnlySpan<byte> data)
    {
        int o = 0;
        foreach (byte* span in Spans(block))
        {
            data.Slice(o, SpanBytes).CopyTo(new Span<byte>(span, SpanBytes));
            o += SpanBytes;
        }
    }

    /// <summary>The block's bytes in CPU-slot order (layer 0 K, layer 0 V, layer 1 K, layer 1 V).</summary>
    public byte[] Read(int block)
    {
        var bytes = new byte[BlockBytes];
        int o = 0;
        foreach (byte* span in Spans(block))
        {
            new ReadOnlySpan<byte>(span, SpanBytes).CopyTo(bytes.AsSpan(o));
            o += SpanBytes;
        }
        return bytes;
    }

    public bool IsZero(int block) => Read(block).AsSpan().IndexOfAnyExcept((byte)0) < 0;

    private byte*[] Spans(int block)
    {
        if ((uint)block >= (uint)NumBlocks) throw new ArgumentOutOfRangeException(nameof(block));
        var spans = new byte*[4];
        int k = 0;
        foreach (KvLayerDesc l in Layers)
            for (int kv = 0; kv < l.NumKv; kv++)
                spans[k++] = (byte*)l.Base + block * l.BlockStride + kv * l.KvStride;
        return spans;
    }

    public void Dispose()
    {
        for (int i = 0; i < _bases.Length; i++)
        {
            NativeMemory.Free(_bases[i]);
            _bases[i] = null;
        }
    }
}
