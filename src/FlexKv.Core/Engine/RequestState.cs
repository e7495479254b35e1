using FlexKv.Core.Hashing;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

/// <summary>
/// What the engine remembers about one vLLM request between connector calls: its hashing state,
/// vLLM's local hit, the blocks pinned by the latest match, and its get/put tasks.
/// </summary>
internal sealed class RequestState
{
    public string Id = "";
    public readonly HashedSequence Sequence = new();
    public int NumComputedTokens;
    public int[] MatchNodes = new int[64];
    /// <summary>Nodes [ComputedBlocks, ComputedBlocks + PinnedCount) of MatchNodes hold a pin for this request.</summary>
    public int PinnedCount;
    public int ComputedBlocks;
    public TransferTask? Get;
    public TransferTask? Put;
    public bool GetPlanned;
    public bool Finished;
    public bool Hold;
    /// <summary>The remote store is being asked about this request's blocks (polled by its next lookups).</summary>
    public Tiers.Remote.PendingLookup? RemoteLookup;
    /// <summary>Blocks below this index were asked about already: a later lookup does not ask again.</summary>
    public int RemoteAskedUpTo;
    /// <summary>Blocks of the current match that need a CPU slot to be loaded through (on SSD or remote only).</summary>
    public int Staging;
    /// <summary>The metrics counted the request as matched (once per request).</summary>
    public bool MatchCounted;
    /// <summary>vLLM's hash of block i at [i * MaxHashBytes, + HashLength), for blocks below HashCount (KV events only).</summary>
    public byte[] Hashes = [];
    public int HashCount;
    public int HashLength;

    /// <summary>vLLM's hash of block <paramref name="block"/>, empty when vLLM did not pass it.</summary>
    public ReadOnlySpan<byte> HashOf(int block) =>
        block < HashCount ? Hashes.AsSpan(block * Events.KvEvent.MaxHashBytes, HashLength) : default;

    public void EnsureMatchCapacity(int blocks)
    {
        if (MatchNodes.Length < blocks) MatchNodes = new int[Math.Max(blocks, MatchNodes.Length * 2)];
    }

    public void Reset()
    {
        Id = "";
        Sequence.Reset();
        NumComputedTokens = 0;
        PinnedCount = 0;
        ComputedBlocks = 0;
        Get = null;
        Put = null;
        GetPlanned = false;
        Finished = false;
        Hold = false;
        RemoteLookup = null;
        RemoteAskedUpTo = 0;
        Staging = 0;
        MatchCounted = false;
        HashCount = 0;
        HashLength = 0;
    }
}
