using System.Runtime.InteropServices;

namespace FlexKv.Core.Transfer;

/// <summary>
/// Where one layer's blocks live in a registered KV cache (mirrors <c>flexkv_layer_t</c>):
/// block b's K span starts at <c>Base + b*BlockStride</c>, its V span <see cref="KvStride"/> bytes
/// later; each span is <see cref="SpanBytes"/> contiguous bytes. FlashAttention 5-D (K/V axis
/// first or second), packed 4-D and MLA 3-D caches are all expressible (packed and MLA: one span).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvLayerDesc
{
    /// <summary>Address of block 0's first span.</summary>
    public ulong Base;
    /// <summary>Bytes between consecutive blocks.</summary>
    public long BlockStride;
    /// <summary>Bytes between a block's K span and its V span (ignored when <see cref="NumKv"/> is 1).</summary>
    public long KvStride;
    /// <summary>Contiguous bytes per span.</summary>
    public long SpanBytes;
    /// <summary>2 for separate K and V spans, 1 for one span per block.</summary>
    public int NumKv;
    /// <summary>Must be 0.</summary>
    public int Reserved;
}
