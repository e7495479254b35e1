namespace FlexKv.Core.Transfer;

/// <summary>Why one block of a transfer did not arrive (kept per block in a task, one byte each).</summary>
internal enum BlockFailure : byte
{
    /// <summary>Copied.</summary>
    None = 0,
    /// <summary>The copy between the CPU slot and vLLM's cache failed (a worker gone, a bad block id). Transports set this.</summary>
    CopyFailed = 1,
    /// <summary>No CPU slot could be freed to stage the block through.</summary>
    NoCpuSlot = 2,
    /// <summary>The tier's bytes did not match their seal (corrupt, or written for another key): its copy goes.</summary>
    Checksum = 3,
    /// <summary>The tier could not read the block (an I/O error): its copy goes.</summary>
    IoError = 4,
    /// <summary>The tier no longer holds the block (a shared store evicted it): its copy goes.</summary>
    Missing = 5,
    /// <summary>The tier did not answer in time or is down: its copy is not trusted any more.</summary>
    Unavailable = 6,
}

/// <summary>What a failure means for the block's copies.</summary>
internal static class BlockFailures
{
    /// <summary>Whether the tier the block was read from must drop its copy.</summary>
    public static bool LosesTierCopy(this BlockFailure f) => f >= BlockFailure.Checksum;
}
