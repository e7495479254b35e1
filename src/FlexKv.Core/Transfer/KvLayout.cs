using FlexKv.Core.Errors;

namespace FlexKv.Core.Transfer;

/// <summary>A validated set of registered layers and the number of device blocks they hold.</summary>
internal sealed class KvLayout
{
    private KvLayout(KvLayerDesc[] layers, int numDeviceBlocks, long blockBytes)
    {
        Layers = layers;
        NumDeviceBlocks = numDeviceBlocks;
        BlockBytes = blockBytes;
    }

    /// <summary>The layers, in registration order (the order bytes take inside a CPU slot).</summary>
    public KvLayerDesc[] Layers { get; }

    /// <summary>Blocks per layer on the device side; valid block ids are 0..NumDeviceBlocks-1.</summary>
    public int NumDeviceBlocks { get; }

    /// <summary>Bytes of one block over all layers.</summary>
    public long BlockBytes { get; }

    /// <summary>Validates a registration against the engine's block size.</summary>
    public static KvLayout Create(ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks, long expectedBlockBytes)
    {
        if (layers.IsEmpty) Fail("at least one layer must be registered");
        if (numDeviceBlocks <= 0) Fail($"num_device_blocks must be > 0, got {numDeviceBlocks}");
        long total = 0;
        for (int i = 0; i < layers.Length; i++)
        {
            ref readonly KvLayerDesc l = ref layers[i];
            if (l.Base == 0) Fail($"layer {i}: base address is null");
            if (l.NumKv is not (1 or 2)) Fail($"layer {i}: num_kv must be 1 or 2, got {l.NumKv}");
            if (l.SpanBytes <= 0) Fail($"layer {i}: span_bytes must be > 0, got {l.SpanBytes}");
            // A span larger than a whole block cannot be part of one; this also keeps the sum
            // below from wrapping around to the expected size (2 x 2^62 x 2 + 4096 == 4096).
            if (l.SpanBytes > expectedBlockBytes)
                Fail($"layer {i}: span_bytes {l.SpanBytes} is larger than a whole block ({expectedBlockBytes} bytes)");
            if (l.BlockStride < l.SpanBytes) Fail($"layer {i}: block_stride {l.BlockStride} is smaller than span_bytes {l.SpanBytes}");
            long kvDistance = l.NumKv == 2 ? (l.KvStride == long.MinValue ? long.MaxValue : Math.Abs(l.KvStride)) : 0;
            if (l.NumKv == 2 && kvDistance < l.SpanBytes)
                Fail($"layer {i}: K and V spans overlap (kv_stride {l.KvStride}, span_bytes {l.SpanBytes})");
            if (l.Reserved != 0) Fail($"layer {i}: reserved field must be 0");
            CheckAddressRange(i, in l, kvDistance, numDeviceBlocks);
            total += l.SpanBytes * l.NumKv; // at most 2 x expectedBlockBytes per layer: no overflow
            if (total > expectedBlockBytes) break; // reported below
        }
        if (total != expectedBlockBytes)
            Fail($"the registered layers hold {total} bytes per block but the engine was configured for {expectedBlockBytes} " +
                 "(check num_layers, num_kv_heads, head_size, dtype and tokens_per_block)");
        return new KvLayout(layers.ToArray(), numDeviceBlocks, total);
    }

    /// <summary>
    /// Every byte of every block must have an address below 2^63: the copy threads compute
    /// <c>Base + b*BlockStride (+ KvStride)</c> without checks, and a wrapped address would be a
    /// wild write the process cannot survive.
    /// </summary>
    private static void CheckAddressRange(int i, in KvLayerDesc l, long kvDistance, int numDeviceBlocks)
    {
        try
        {
            checked
            {
                ulong lastBlock = (ulong)((long)(numDeviceBlocks - 1) * l.BlockStride);
                ulong first = l.Base;
                if (l.NumKv == 2 && l.KvStride < 0)
                {
                    if (l.Base < (ulong)kvDistance) Fail($"layer {i}: the V span of block 0 would start below address 0");
                    first = l.Base - (ulong)kvDistance;
                }
                ulong end = l.Base + lastBlock + (l.NumKv == 2 && l.KvStride > 0 ? (ulong)kvDistance : 0) + (ulong)l.SpanBytes;
                // User-space and CUDA addresses sit far below 2^63; the copy code does signed offset arithmetic.
                if (end > long.MaxValue || first > end) throw new OverflowException();
            }
        }
        catch (OverflowException)
        {
            Fail($"layer {i}: the addresses of its {numDeviceBlocks} blocks (base 0x{l.Base:x}, block_stride {l.BlockStride}, " +
                 $"kv_stride {l.KvStride}) do not fit below 2^63");
        }
    }

    /// <summary>Throws unless every id is a valid device block.</summary>
    public void CheckBlockIds(ReadOnlySpan<int> blockIds)
    {
        foreach (int b in blockIds)
            if ((uint)b >= (uint)NumDeviceBlocks)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"block id {b} is outside the registered cache (0..{NumDeviceBlocks - 1})");
    }

    private static void Fail(string what) =>
        throw new FlexKvException(FlexKvStatus.InvalidArgument, $"register_kv_caches: {what}");
}
