namespace FlexKv.Core.Index;

/// <summary>Lifecycle of one index entry.</summary>
internal enum BlockState : byte
{
    /// <summary>The node slot is unused.</summary>
    Free = 0,
    /// <summary>Bytes are being written; not matchable, not evictable.</summary>
    Writing = 1,
    /// <summary>Bytes are complete; matchable.</summary>
    Ready = 2,
    /// <summary>A write failed; the node only keeps its children reachable for eviction and holds no slot.</summary>
    Empty = 3,
}
