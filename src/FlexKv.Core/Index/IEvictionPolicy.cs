namespace FlexKv.Core.Index;

/// <summary>
/// Chooses which evictable leaf goes first. The index tells the policy whenever a node may have
/// become evictable (a ready, unpinned leaf) and asks it for victims; the policy may keep stale
/// candidates, because the index re-checks each one before evicting.
/// </summary>
internal interface IEvictionPolicy
{
    /// <summary>A node may now be an evictable leaf, used last at <paramref name="lastUse"/>.</summary>
    void OnCandidate(int node, uint generation, long lastUse);

    /// <summary>Returns the next candidate (possibly stale) or false when none is left.</summary>
    bool TryTake(out int node, out uint generation, out long lastUse);

    /// <summary>Puts back a candidate that was taken but must stay (e.g. the block being extended).</summary>
    void Return(int node, uint generation, long lastUse);

    /// <summary>Number of candidates held, stale ones included.</summary>
    int Count { get; }

    /// <summary>Forgets every candidate.</summary>
    void Clear();
}
