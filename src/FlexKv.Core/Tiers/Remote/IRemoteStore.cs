namespace FlexKv.Core.Tiers.Remote;

/// <summary>Outcome of reading one block from the remote store.</summary>
internal enum RemoteReadResult
{
    /// <summary>Read and checksum-verified.</summary>
    Ok = 0,
    /// <summary>The key is gone (evicted, expired, deleted).</summary>
    Missing = 1,
    /// <summary>The value failed its checksum or has the wrong length.</summary>
    Corrupt = 2,
    /// <summary>The store did not answer in time or is down.</summary>
    Unavailable = 3,
}

/// <summary>
/// A store many engines share (Redis/Valkey, single node or cluster). Blocks are addressed by
/// their 128-bit key under the engine's fingerprint; values carry a checksum the store verifies.
/// Every call is bounded in time and reports failures per block; none throws for a network
/// problem. The implementation lives outside Core (FlexKv.Redis) and is passed in at create.
/// </summary>
internal unsafe interface IRemoteStore : IDisposable
{
    /// <summary>Whether the store is reachable now (it reconnects in the background).</summary>
    bool IsConnected { get; }

    /// <summary>What the store is, for messages (endpoints, cluster or not).</summary>
    string Description { get; }

    /// <summary>Connections that carry values: a batch spreads its blocks over them.</summary>
    int Connections => 1;

    /// <summary>Read batches whose values were received straight into their CPU slots (no client-side copy).</summary>
    long DirectReadBatches => 0;

    /// <summary>Values of <paramref name="bytes"/> the store keeps in flight at once within a batch (over all connections).</summary>
    int Window(int bytes) => 1;

    /// <summary>Connections that carry the values of reads (when reads go another way than writes).</summary>
    int ReadConnections => Connections;

    /// <summary>Values of <paramref name="bytes"/> in flight at once within a read batch (over all its connections).</summary>
    int ReadWindow(int bytes) => Window(bytes);

    /// <summary>
    /// Starts asking, in one pipelined round trip, how many leading <paramref name="keys"/> the
    /// store holds, and returns at once (never blocks on the network).
    /// </summary>
    IRemoteLookup BeginCountPresent(ReadOnlySpan<UInt128> keys);

    /// <summary>Stores blocks (value = bytes + checksum); <paramref name="ok"/>[i] says whether block i was stored.</summary>
    void Put(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<bool> ok);

    /// <summary>Reads blocks into the buffers, verifying each checksum.</summary>
    void Get(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results);

    /// <summary>Deletes a block (its value was found corrupt).</summary>
    void Delete(UInt128 key);

    /// <summary>Deletes every key of this engine's fingerprint (SCAN + UNLINK) within the budget; returns how many.</summary>
    long DeleteAll(int budgetMs);
}
