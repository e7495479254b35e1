using FlexKv.Core.Transfer;

namespace FlexKv.Core.Metrics;

/// <summary>
/// Why a block did not move (label <c>reason</c> of <c>transfer_failures</c>): the per-block
/// <see cref="BlockFailure"/> of loads, plus what only writes and cancellations have.
/// </summary>
internal enum FailureReason
{
    /// <summary>Not a failure.</summary>
    None = -1,
    /// <summary>The copy between the CPU slot and vLLM's cache failed (a worker gone, a bad block id).</summary>
    CopyFailed = 0,
    /// <summary>No CPU slot could be freed to stage a block through.</summary>
    NoCpuSlot = 1,
    /// <summary>The tier's bytes did not match their seal.</summary>
    Checksum = 2,
    /// <summary>The tier could not read or write the block (an I/O error, a store that refused or threw).</summary>
    IoError = 3,
    /// <summary>The tier no longer holds the block (a shared store evicted it).</summary>
    Missing = 4,
    /// <summary>The tier did not answer in time or is down.</summary>
    Unavailable = 5,
    /// <summary>The task was cancelled (preemption, abort, reset) before its blocks moved.</summary>
    Cancelled = 6,
    /// <summary>The SSD disk is full: writes are stopped.</summary>
    DiskFull = 7,
    /// <summary>The tier's write queue was full: the write was dropped.</summary>
    QueueFull = 8,
}

internal static class FailureReasons
{
    public const int Count = 9;

    /// <summary>Label values, by <see cref="FailureReason"/>.</summary>
    public static readonly string[] Labels =
        ["copy_failed", "no_cpu_slot", "checksum", "io_error", "missing", "unavailable", "cancelled", "disk_full", "queue_full"];

    /// <summary>The reason a block of a task failed with (<see cref="FailureReason.None"/> when it did not).</summary>
    public static FailureReason From(BlockFailure f) => f switch
    {
        BlockFailure.None => FailureReason.None,
        BlockFailure.CopyFailed => FailureReason.CopyFailed,
        BlockFailure.NoCpuSlot => FailureReason.NoCpuSlot,
        BlockFailure.Checksum => FailureReason.Checksum,
        BlockFailure.IoError => FailureReason.IoError,
        BlockFailure.Missing => FailureReason.Missing,
        BlockFailure.Unavailable => FailureReason.Unavailable,
        _ => FailureReason.IoError,
    };
}
