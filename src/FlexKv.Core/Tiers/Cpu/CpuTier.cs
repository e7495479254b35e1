using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Core.Memory;

namespace FlexKv.Core.Tiers;

/// <summary>
/// The CPU tier: one native region cut into fixed-size slots, one slot per block holding all its
/// layers (block-major, so a block is one contiguous run). The slot free list lives in the index.
/// </summary>
internal sealed unsafe class CpuTier : IDisposable
{
    private readonly NativeRegion _region;

    /// <summary>Allocates the pool described by <paramref name="options"/>, refusing sizes the machine cannot give.</summary>
    public CpuTier(EngineOptions options)
    {
        BlockBytes = EngineOptionsValidator.ResolveBlockBytes(options);
        NumBlocks = (int)EngineOptionsValidator.ResolveCpuBlocks(options);
        // O_DIRECT reads and writes whole 4 KiB-aligned extents straight from the slots.
        SlotStride = options.SsdCacheGb > 0 ? (BlockBytes + 4095) / 4096 * 4096 : BlockBytes;
        long bytes;
        try
        {
            bytes = checked(SlotStride * NumBlocks);
        }
        catch (OverflowException)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'num_cpu_blocks': {NumBlocks} blocks of {BlockBytes} bytes do not fit in 64 bits");
        }
        long? available = MemoryInfo.AvailableBytes();
        if (available is { } avail && bytes > avail * options.MaxMemoryFraction)
            throw new FlexKvException(FlexKvStatus.OutOfMemory,
                $"the CPU cache needs {bytes / (1 << 20)} MiB ({NumBlocks} blocks of {BlockBytes} bytes) but only " +
                $"{avail / (1 << 20)} MiB are available (limit {options.MaxMemoryFraction:P0}); lower cpu_cache_gb");
        _region = new NativeRegion(bytes, options.UseHugepageCpuBuffer);
        Slots = new SlotPool(NumBlocks);
    }

    /// <summary>Bytes per block (all layers).</summary>
    public long BlockBytes { get; }

    /// <summary>Bytes from one slot to the next (block bytes, rounded up to 4 KiB with an SSD tier).</summary>
    public long SlotStride { get; }

    /// <summary>Slots in the pool.</summary>
    public int NumBlocks { get; }

    /// <summary>The pool's free list.</summary>
    public SlotPool Slots { get; }

    /// <summary>Bytes reserved for the pool.</summary>
    public long ReservedBytes => _region.Length;

    /// <summary>Whether huge pages were hinted successfully.</summary>
    public bool HugePages => _region.HugePagesHinted;

    /// <summary>Address of a slot.</summary>
    public byte* SlotAddress(int slot)
    {
        if ((uint)slot >= (uint)NumBlocks) throw new ArgumentOutOfRangeException(nameof(slot), slot, "CPU slot out of range");
        return _region.Base + (long)slot * SlotStride;
    }

    /// <summary>Releases the pool.</summary>
    public void Dispose() => _region.Dispose();
}
