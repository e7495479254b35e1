using FlexKv.Core.Config;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers;

/// <summary>What the engine gives a tier it opens: the configuration and the CPU tier it stages through.</summary>
internal sealed unsafe class TierContext
{
    public required EngineOptions Options { get; init; }

    /// <summary>The cache fingerprint every key is seeded with (persisted and shared tiers keep it).</summary>
    public required UInt128 Fingerprint { get; init; }

    public required long BlockBytes { get; init; }

    /// <summary>CPU slot 0 and the bytes from one slot to the next.</summary>
    public required byte* CpuBase { get; init; }

    public required long CpuStride { get; init; }

    /// <summary>Startup messages for stats()["warnings"] and the log.</summary>
    public required List<string> Warnings { get; init; }

    /// <summary>Called on a tier's reader thread when a task's reads from it are done; false once the engine stops.</summary>
    public required Func<TransferTask, bool> ReadsDone { get; init; }

    /// <summary>Called on a tier's writer thread after a batch of writes ended (the engine applies them if its lock is free).</summary>
    public required Action WritesDone { get; init; }

    /// <summary>The engine's metrics: a tier records the operations of its writer (its batches' timing).</summary>
    public required Metrics.EngineMetrics Metrics { get; init; }

    /// <summary>Test hook: wraps the SSD tier's block device (fault injection).</summary>
    public Func<Ssd.IBlockDevice, Ssd.IBlockDevice>? WrapSsdDevice { get; init; }

    /// <summary>Builds the remote store when remote_url is set (FlexKv.Redis passes StackExchange.Redis's).</summary>
    public Func<EngineOptions, UInt128, Remote.IRemoteStore>? RemoteStoreFactory { get; init; }

    public byte* CpuSlot(int slot) => CpuBase + slot * CpuStride;
}
