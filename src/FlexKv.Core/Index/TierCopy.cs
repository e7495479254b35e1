namespace FlexKv.Core.Index;

/// <summary>A block's copy in one lower tier (below the CPU), as the index sees it.</summary>
internal enum TierCopy : byte
{
    /// <summary>The tier holds no copy.</summary>
    None = 0,
    /// <summary>Being written to the tier; not readable yet.</summary>
    Writing = 1,
    /// <summary>Readable from the tier.</summary>
    Ready = 2,
}
