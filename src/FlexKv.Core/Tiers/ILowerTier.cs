using System.Collections.Concurrent;
using FlexKv.Core.Engine;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers.Remote;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers;

/// <summary>
/// A tier below the CPU (SSD, a shared store, a test tier): it holds copies of blocks, takes
/// CPU-ready blocks written through to it after a save, and reads blocks into CPU slots for a
/// load (the CPU tier is the staging area both ways). The engine owns the index and every
/// decision; a tier owns its threads, its bytes and its counters.
///
/// Threads: every member but <see cref="SubmitReads"/>' completion callback and
/// <see cref="CompletedWrites"/> is called on the scheduler thread under the engine lock; the
/// tier's own threads only touch its queues, the CPU slots the engine handed them, and its
/// counters (read with atomics by <see cref="FillStats"/>).
/// </summary>
internal interface ILowerTier
{
    /// <summary>Name in messages ("ssd", "remote").</summary>
    string Name { get; }

    /// <summary>
    /// Slots of an owned tier (it keeps what it is given, prefix-closed, and evicts its own LRU
    /// leaves); null for a hint tier (a store others share and evict, whose copies a lookup finds).
    /// </summary>
    SlotPool? Slots { get; }

    /// <summary>Whether a read may wait on another machine (a reset does not wait for such reads).</summary>
    bool ReadsMayStall { get; }

    /// <summary>
    /// The tier got number <paramref name="tier"/> in <paramref name="index"/>: blocks kept from a
    /// previous run go into the index now. Nothing on disk is changed yet (see <see cref="Commit"/>).
    /// </summary>
    void Attach(BlockIndex index, int tier);

    /// <summary>Engine creation can no longer fail: the tier may now rewrite or trim what it kept.</summary>
    void Commit();

    /// <summary>
    /// Queues writing a CPU-ready block (write-through). For an owned tier the index already gave
    /// <see cref="TierWrite.TierSlot"/>; the CPU slot stays pinned until the write is reported on
    /// <see cref="CompletedWrites"/>. False when the tier takes no writes now (down, queue or disk full).
    /// </summary>
    bool TryWrite(in TierWrite write);

    /// <summary>Finished writes, applied to the index by the engine.</summary>
    ConcurrentQueue<TierWriteDone> CompletedWrites { get; }

    /// <summary>Messages for the engine's warnings (degraded operation), applied with the completions.</summary>
    ConcurrentQueue<string> Warnings { get; }

    /// <summary>
    /// Reads the blocks of <paramref name="task"/> staged from this tier into their CPU slots,
    /// records failed ones (<see cref="TransferTask.Fail"/>), and then calls <see cref="TierContext.ReadsDone"/>.
    /// Called on the scheduler thread or on a hotter tier's reader thread: it only queues.
    /// </summary>
    void SubmitReads(TransferTask task, int tier);

    /// <summary>Lookups of blocks beyond the local prefix (hint tiers; null when the tier has none).</summary>
    LookupState? Lookups { get; }

    /// <summary>Whether the tier can be asked or written now (a store that is reachable).</summary>
    bool IsAvailable { get; }

    /// <summary>Starts asking which leading keys the tier holds (only when <see cref="Lookups"/> is set).</summary>
    IRemoteLookup BeginLookup(ReadOnlySpan<UInt128> keys);

    /// <summary>The index forgot every block (reset): the tier forgets them too, after the writes queued before.</summary>
    void Clear();

    /// <summary>Writes the tier's keys of the stats (<paramref name="writesPending"/>: its writes not applied yet).</summary>
    void FillStats(EngineStats stats, int writesPending);

    /// <summary>Blocks waiting in the tier's write queue (read by the metrics reader, any thread).</summary>
    int QueuedWrites { get; }

    /// <summary>Blocks waiting in the tier's read queue (read by the metrics reader, any thread).</summary>
    int QueuedReads { get; }

    /// <summary>Stops the tier's threads (bounded) and releases what it holds; returns whether they stopped.</summary>
    bool Stop(int timeoutMs);

    /// <summary>Engine creation failed after the tier opened (and stopped): undo what opening allocated.</summary>
    void Abandon();
}

/// <summary>A block to write to a lower tier, and where it comes from.</summary>
internal readonly record struct TierWrite(int Node, int TierSlot, int CpuSlot, UInt128 Key, UInt128 Parent, bool HasParent);

/// <summary>A finished write to a lower tier; <paramref name="Why"/> says why one that is not <paramref name="Ok"/> failed (I/O error when not given).</summary>
internal readonly record struct TierWriteDone(int Node, bool Ok, Metrics.FailureReason Why = Metrics.FailureReason.None);
