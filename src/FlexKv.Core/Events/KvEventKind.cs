namespace FlexKv.Core.Events;

/// <summary>What happened to a block in a tier (vLLM's BlockStored, BlockRemoved, AllBlocksCleared).</summary>
internal enum KvEventKind : byte
{
    /// <summary>The block became readable in the tier.</summary>
    Stored = 1,
    /// <summary>The tier dropped its copy (evicted, or dropped after a failed read).</summary>
    Removed = 2,
    /// <summary>Every tier forgot every block (a reset).</summary>
    Cleared = 3,
}
