namespace FlexKv.Core.Metrics;

/// <summary>
/// Why a lookup's offer ended before the prompt's last full block (label <c>reason</c> of
/// <c>blocks_not_offered</c>): the blocks from there to the prompt's end are counted under the
/// reason of the first one. A block cached under another fingerprint or namespace (model, LoRA,
/// cache salt) has another key, so it reads as <see cref="NotCached"/>.
/// </summary>
internal enum NotOfferedReason
{
    /// <summary>The index never held the key, or forgot it longer ago than it remembers removals.</summary>
    NotCached = 0,
    /// <summary>The block was cached and evicted (from the last tier that held it; or the shared store lost it).</summary>
    Evicted = 1,
    /// <summary>The block was cached and dropped after a failed read (checksum, I/O error).</summary>
    Dropped = 2,
    /// <summary>A save of the block is still in flight.</summary>
    BeingWritten = 3,
    /// <summary>The block is only in a lower tier and no CPU slot is free to stage it through (pinned by other requests).</summary>
    PinnedLimit = 4,
    /// <summary>The remote store answered later than remote_lookup_budget_ms, or its breaker is open.</summary>
    RemoteOverBudget = 5,
    /// <summary>The remote store is not reachable.</summary>
    RemoteDown = 6,
    /// <summary>No KV cache is registered: nothing can be loaded.</summary>
    NotRegistered = 7,
    /// <summary>A reset is still clearing the cache.</summary>
    Resetting = 8,
}

internal static class NotOfferedReasons
{
    public const int Count = 9;

    /// <summary>Label values, by <see cref="NotOfferedReason"/>.</summary>
    public static readonly string[] Labels =
        ["not_cached", "evicted", "dropped", "being_written", "pinned_limit", "remote_over_budget", "remote_down", "not_registered", "resetting"];
}
