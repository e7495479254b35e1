using System.Collections.Concurrent;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers.Remote;

/// <summary>A block to write to the remote store, and the write's outcome.</summary>
internal readonly record struct RemoteWrite(int Node, int CpuSlot, UInt128 Key);

/// <summary>
/// The remote tier's moving parts: a writer thread (CPU → store write-through, dropped when the
/// store is down or the queue holds remote_max_inflight_mb) and a reader thread (store → CPU
/// staging for loads), fed by bounded queues that wake them directly. The index stays with the
/// engine: finished writes come back on <see cref="CompletedWrites"/>.
/// </summary>
internal sealed unsafe class RemoteTier : IDisposable
{
    private const int MaxBatch = 32;
    // Requests in flight per batch: Redis (7.0) and StackExchange.Redis handle pipelined large
    // values badly (measured here: 2 MiB GETs 0.2 GB/s pipelined vs 0.6-0.9 one at a time), so a
    // batch carries at most 1 MiB; small blocks still pipeline.
    private const long BatchBytes = 1L << 20;
    private readonly int _batch;
    private readonly IRemoteStore _store;
    private readonly byte* _cpuBase;
    private readonly long _cpuStride;
    private readonly int _blockBytes;
    private readonly BlockingCollection<RemoteWrite> _writes;
    private readonly BlockingCollection<(TransferTask Task, int Index)> _reads = new(new ConcurrentQueue<(TransferTask, int)>(), 1 << 16);
    private readonly Thread _writer;
    private readonly Thread _reader;
    private readonly Func<TransferTask, bool> _readsDone;
    private long _written, _read, _missing, _corrupt, _unavailable, _dropped, _writeTicks, _readTicks;

    public RemoteTier(IRemoteStore store, byte* cpuBase, long cpuStride, int blockBytes, int maxQueuedBlocks,
        Func<TransferTask, bool> readsDone)
    {
        _store = store;
        _cpuBase = cpuBase;
        _cpuStride = cpuStride;
        _blockBytes = blockBytes;
        _readsDone = readsDone;
        _batch = (int)Math.Clamp(BatchBytes / Math.Max(1, blockBytes), 1, MaxBatch);
        _writes = new BlockingCollection<RemoteWrite>(new ConcurrentQueue<RemoteWrite>(), Math.Max(1, maxQueuedBlocks));
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "flexkv-remote-write" };
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "flexkv-remote-read" };
        _writer.Start();
        _reader.Start();
    }

    public IRemoteStore Store => _store;

    /// <summary>Requests the tier keeps in flight per batch (its pipelining depth).</summary>
    public int PipelineDepth => _batch;

    public ConcurrentQueue<RemoteWrite> CompletedWrites { get; } = new();

    public Action? WritesDone { get; set; }

    public long BlocksWritten => Interlocked.Read(ref _written);
    public long BlocksRead => Interlocked.Read(ref _read);
    public long ReadsMissing => Interlocked.Read(ref _missing);
    public long ReadsCorrupt => Interlocked.Read(ref _corrupt);
    public long ReadsUnavailable => Interlocked.Read(ref _unavailable);
    public long WritesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Milliseconds spent inside the store's write calls.</summary>
    public double StoreWriteMs => Interlocked.Read(ref _writeTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;

    /// <summary>Milliseconds spent inside the store's read calls.</summary>
    public double StoreReadMs => Interlocked.Read(ref _readTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;

    /// <summary>
    /// Deletes every key of this engine in the store from the writer thread, after the writes
    /// queued before it (a store that does not answer must not hold the caller of reset).
    /// </summary>
    public void RequestDeleteAll(int budgetMs)
    {
        _deleteAllBudgetMs = budgetMs;
        Volatile.Write(ref _deleteAllRequested, 1);
        _writes.TryAdd(DeleteAllMarker); // wakes the writer; when the queue is full it sees the flag after the next batch
    }

    private static readonly RemoteWrite DeleteAllMarker = new(-1, -1, 0);
    private int _deleteAllRequested, _deleteAllBudgetMs;

    private void DeleteAllIfRequested()
    {
        if (Interlocked.Exchange(ref _deleteAllRequested, 0) == 0) return;
        try { if (_store.IsConnected) _store.DeleteAll(_deleteAllBudgetMs); }
        catch (Exception) { } // best effort: the keys expire or are overwritten
    }

    /// <summary>Queues a write unless the store is down or the queue is full (then it is dropped).</summary>
    public bool TryEnqueueWrite(in RemoteWrite w)
    {
        if (!_store.IsConnected || _writes.IsAddingCompleted || !_writes.TryAdd(w))
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }
        return true;
    }

    /// <summary>Queues the remote reads of a get; when all arrive the task moves on.</summary>
    public void SubmitReads(TransferTask task)
    {
        task.State = TransferState.Launched;
        Volatile.Write(ref task.PendingRemoteReads, task.RemoteReadsTotal);
        for (int i = 0; i < task.Count; i++)
            if (task.FromRemote[i] != 0) _reads.Add((task, i));
    }

    private void WriteLoop()
    {
        var batch = new List<RemoteWrite>(_batch);
        while (_writes.TryTake(out RemoteWrite first, Timeout.Infinite))
        {
            DeleteAllIfRequested();
            if (first.Node < 0) continue; // the marker of RequestDeleteAll
            batch.Add(first);
            while (batch.Count < _batch && _writes.TryTake(out RemoteWrite w) && w.Node >= 0) batch.Add(w);
            int n = batch.Count;
            var keys = new UInt128[n];
            var bufs = new nint[n];
            var ok = new bool[n];
            for (int i = 0; i < n; i++)
            {
                keys[i] = batch[i].Key;
                bufs[i] = (nint)(_cpuBase + batch[i].CpuSlot * _cpuStride);
            }
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                if (_store.IsConnected) _store.Put(keys, bufs, _blockBytes, ok);
            }
            catch (Exception)
            {
                // A store that throws loses this batch, not the thread.
            }
            Interlocked.Add(ref _writeTicks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            for (int i = 0; i < n; i++)
            {
                if (ok[i]) Interlocked.Increment(ref _written);
                else Interlocked.Increment(ref _dropped);
                CompletedWrites.Enqueue(batch[i]);
            }
            batch.Clear();
            DeleteAllIfRequested(); // a marker taken inside the batch
            try { WritesDone?.Invoke(); } catch (Exception) { }
        }
    }

    private void ReadLoop()
    {
        var batch = new List<(TransferTask Task, int Index)>(_batch);
        while (_reads.TryTake(out var first, Timeout.Infinite))
        {
            batch.Add(first);
            while (batch.Count < _batch && _reads.TryTake(out var item)) batch.Add(item);
            int n = batch.Count;
            var keys = new UInt128[n];
            var bufs = new nint[n];
            var results = new RemoteReadResult[n];
            for (int k = 0; k < n; k++)
            {
                var (task, i) = batch[k];
                keys[k] = task.RemoteKeys[i];
                bufs[k] = (nint)(_cpuBase + task.CpuSlots[i] * _cpuStride);
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
                    case RemoteReadResult.Missing: Interlocked.Increment(ref _missing); task.Failed[i] = 3; break;
                    case RemoteReadResult.Corrupt:
                        Interlocked.Increment(ref _corrupt);
                        task.Failed[i] = 3;
                        try { _store.Delete(keys[k]); } catch (Exception) { } // so it is written again, correctly
                        break;
                    default: Interlocked.Increment(ref _unavailable); task.Failed[i] = 3; break;
                }
            }
            foreach (var (task, _) in batch)
                if (Interlocked.Decrement(ref task.PendingRemoteReads) == 0 && !_readsDone(task))
                    return; // stopping
            batch.Clear();
        }
    }

    /// <summary>Stops the threads (bounded) and closes the store; returns whether both stopped.</summary>
    public bool Stop(int timeoutMs)
    {
        _writes.CompleteAdding();
        _reads.CompleteAdding();
        bool ok = _writer.Join(timeoutMs) & _reader.Join(timeoutMs);
        if (ok) _store.Dispose();
        return ok;
    }

    public void Dispose() => Stop(10_000);
}
