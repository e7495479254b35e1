using System.Collections.Concurrent;
using FlexKv.Core.Config;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Core.Metrics;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers.Remote;

/// <summary>
/// The remote tier: a store many engines share (Redis/Valkey), a hint tier — its copies are
/// what a lookup found, and other engines may evict them. A writer thread does CPU → store
/// write-through (dropped when the store is down or the queue holds remote_max_inflight_mb); a
/// reader thread stages store → CPU for loads. Being down is no error: the store reconnects in
/// the background, and until then lookups miss and writes are dropped.
/// </summary>
internal sealed unsafe class RemoteTier : ILowerTier
{
    private const int MaxBatch = 64;
    // Requests in flight per connection: Redis (7.0) and StackExchange.Redis handle pipelined
    // large values badly (measured here: 2 MiB GETs 0.2 GB/s pipelined vs 0.6-0.9 one at a
    // time), so each of the store's value connections carries at most 1 MiB of a batch (small
    // blocks still pipeline), and a batch spreads over all of them.
    private const long BytesPerConnection = 1L << 20;
    private const int BatchWindows = 4;
    private static readonly TierWrite DeleteAllMarker = new(-1, -1, -1, 0, 0, false);
    private readonly TierContext _ctx;
    private readonly IRemoteStore _store;
    private readonly int _blockBytes;
    private readonly int _batch; // blocks per batch: the depth on each of the store's value connections
    private readonly int _depth;
    private readonly BatchWorker<TierWrite> _writer;
    private readonly StagedReader _reader;
    private int _deleteAllRequested;
    private long _written, _read, _missing, _corrupt, _unavailable, _dropped, _writeTicks, _readTicks;

    private RemoteTier(TierContext ctx, IRemoteStore store, int maxQueuedBlocks)
    {
        _ctx = ctx;
        _store = store;
        _blockBytes = (int)ctx.BlockBytes;
        _depth = (int)Math.Clamp(BytesPerConnection / Math.Max(1, _blockBytes), 1, MaxBatch);
        // Several windows a batch, so the store's window slides within it and is refilled only
        // between batches.
        _batch = Math.Clamp(BatchWindows * store.Window(_blockBytes), 1, MaxBatch);
        _writer = new BatchWorker<TierWrite>("flexkv-remote-write", maxQueuedBlocks, _batch, RunWrites, FailWrites, ctx.WritesDone);
        _reader = new StagedReader("flexkv-remote-read", _batch, RunReads, ctx.ReadsDone, BlockFailure.Unavailable);
    }

    /// <summary>Connects the tier when remote_url (or FlexKV's redis_port) is set.</summary>
    public static ILowerTier? Open(TierContext ctx)
    {
        string url = EngineOptionsValidator.ResolveRemoteUrl(ctx.Options);
        if (url.Length == 0) return null;
        if (ctx.RemoteStoreFactory is null)
            ThrowHelper.Throw(FlexKvStatus.NotSupported, "configuration key 'remote_url': this build of the engine has no remote tier");
        IRemoteStore store = ctx.RemoteStoreFactory(ctx.Options, ctx.Fingerprint);
        if (!store.IsConnected) ctx.Warnings.Add($"the remote store ({store.Description}) is not reachable yet; retrying in the background");
        long queued = Math.Max(1, (long)ctx.Options.RemoteMaxInflightMb * (1 << 20) / ctx.BlockBytes);
        return new RemoteTier(ctx, store, (int)Math.Min(queued, 1 << 20));
    }

    public string Name => "remote";

    public SlotPool? Slots => null;

    public bool ReadsMayStall => true;

    public LookupState? Lookups { get; } = new();

    public bool IsAvailable => _store.IsConnected;

    public IRemoteStore Store => _store;

    public ConcurrentQueue<TierWriteDone> CompletedWrites { get; } = new();

    public ConcurrentQueue<string> Warnings { get; } = new();

    public void Attach(BlockIndex index, int tier) { }

    public void Commit() { }

    public IRemoteLookup BeginLookup(ReadOnlySpan<UInt128> keys) => _store.BeginCountPresent(keys);

    /// <summary>Queues a write unless the store is down or the queue is full (then it is dropped).</summary>
    public bool TryWrite(in TierWrite w)
    {
        if (!_store.IsConnected || !_writer.TryAdd(w))
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }
        return true;
    }

    public void SubmitReads(TransferTask task, int tier) => _reader.Submit(task, tier);

    /// <summary>
    /// With remote_drop_on_reset, deletes every key of this engine from the writer thread, after
    /// the writes queued before it (a store that does not answer must not hold the caller of reset).
    /// </summary>
    public void Clear()
    {
        if (!_ctx.Options.RemoteDropOnReset) return;
        Volatile.Write(ref _deleteAllRequested, 1);
        _writer.TryAdd(DeleteAllMarker); // wakes the writer; when the queue is full it sees the flag after the next batch
    }

    public int QueuedWrites => _writer.Count;

    public int QueuedReads => _reader.Count;

    public void FillStats(EngineStats s, int writesPending)
    {
        s.RemoteWritesPending = writesPending;
        s.RemoteEnabled = true;
        s.RemoteConnected = _store.IsConnected;
        s.RemotePipelineDepth = _depth;
        s.RemoteConnections = _store.Connections;
        s.RemoteDirectReadBatches = _store.DirectReadBatches;
        s.RemoteReadConnections = _store.ReadConnections;
        s.RemoteReadPipelineDepth = Math.Max(1, _store.ReadWindow(_blockBytes) / Math.Max(1, _store.ReadConnections));
        s.RemoteStoreWriteMs = Math.Round(Interlocked.Read(ref _writeTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency, 3);
        s.RemoteStoreReadMs = Math.Round(Interlocked.Read(ref _readTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency, 3);
        s.RemoteBlocksWritten = Interlocked.Read(ref _written);
        s.RemoteBlocksRead = Interlocked.Read(ref _read);
        s.RemoteReadsMissing = Interlocked.Read(ref _missing);
        s.RemoteReadsCorrupt = Interlocked.Read(ref _corrupt);
        s.RemoteReadsUnavailable = Interlocked.Read(ref _unavailable);
        s.RemoteWritesDropped = Interlocked.Read(ref _dropped);
        s.RemoteLookups = Lookups!.Lookups;
        s.RemoteLookupsLate = Lookups.Late;
        s.RemoteMatchedBlocks = Lookups.Matched;
        s.RemoteBreakerOpen = Lookups.Breaker.IsOpen(Environment.TickCount64);
    }

    // ---- writer thread ----------------------------------------------------------------------

    private bool RunWrites(List<TierWrite> batch)
    {
        DeleteAllIfRequested();
        batch.RemoveAll(w => w.Node < 0); // the marker of Clear
        int n = batch.Count;
        if (n == 0) return true;
        var keys = new UInt128[n];
        var bufs = new nint[n];
        var ok = new bool[n];
        for (int i = 0; i < n; i++)
        {
            keys[i] = batch[i].Key;
            bufs[i] = (nint)_ctx.CpuSlot(batch[i].CpuSlot);
        }
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        bool connected = _store.IsConnected;
        try
        {
            if (connected) _store.Put(keys, bufs, _blockBytes, ok);
        }
        catch (Exception)
        {
            // A store that throws loses this batch, not the thread.
        }
        long ticks = System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        Interlocked.Add(ref _writeTicks, ticks);
        if (connected) _ctx.Metrics.Operation(TransferFlow.H2Remote, ticks); // a batch the store was asked to take
        for (int i = 0; i < n; i++)
        {
            if (ok[i]) Interlocked.Increment(ref _written);
            else Interlocked.Increment(ref _dropped);
            CompletedWrites.Enqueue(new TierWriteDone(batch[i].Node, ok[i], connected ? FailureReason.IoError : FailureReason.Unavailable));
        }
        DeleteAllIfRequested(); // a marker taken inside the batch
        return true;
    }

    private void FailWrites(List<TierWrite> batch, Exception e)
    {
        foreach (TierWrite w in batch)
        {
            if (w.Node < 0) continue;
            Interlocked.Increment(ref _dropped);
            CompletedWrites.Enqueue(new TierWriteDone(w.Node, false));
        }
    }

    private void DeleteAllIfRequested()
    {
        if (Interlocked.Exchange(ref _deleteAllRequested, 0) == 0) return;
        try { if (_store.IsConnected) _store.DeleteAll(10_000); }
        catch (Exception) { } // best effort: the keys expire or are overwritten
    }

    // ---- reader thread ----------------------------------------------------------------------

    private void RunReads(List<(TransferTask Task, int Index)> batch)
    {
        int n = batch.Count;
        var keys = new UInt128[n];
        var bufs = new nint[n];
        var results = new RemoteReadResult[n];
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[k];
            keys[k] = task.Keys[i];
            bufs[k] = (nint)_ctx.CpuSlot(task.CpuSlots[i]);
        }
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            if (_store.IsConnected) _store.Get(keys, bufs, _blockBytes, results);
            else results.AsSpan().Fill(RemoteReadResult.Unavailable);
        }
        catch (Exception)
        {
            results.AsSpan().Fill(RemoteReadResult.Unavailable);
        }
        Interlocked.Add(ref _readTicks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[k];
            switch (results[k])
            {
                case RemoteReadResult.Ok: Interlocked.Increment(ref _read); break;
                case RemoteReadResult.Missing: Interlocked.Increment(ref _missing); task.Fail(i, BlockFailure.Missing); break;
                case RemoteReadResult.Corrupt:
                    Interlocked.Increment(ref _corrupt);
                    task.Fail(i, BlockFailure.Checksum);
                    try { _store.Delete(keys[k]); } catch (Exception) { } // so it is written again, correctly
                    break;
                default: Interlocked.Increment(ref _unavailable); task.Fail(i, BlockFailure.Unavailable); break;
            }
        }
    }

    public void Abandon() { } // nothing of the store belongs to this engine until it writes

    /// <summary>Stops the threads (bounded) and closes the store; returns whether both stopped.</summary>
    public bool Stop(int timeoutMs)
    {
        bool ok = _writer.Stop(timeoutMs) & _reader.Stop(timeoutMs);
        if (ok) _store.Dispose();
        return ok;
    }
}
