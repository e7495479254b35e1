using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

internal sealed partial class KvEngine
{
    /// <summary>
    /// vLLM's <c>query_finished_task</c>: hands out the requests whose loads (Recving) and saves
    /// (Sending, only for requests whose finish returned true) ended, each exactly once, and the
    /// device block ids whose loads failed. When a buffer is too small nothing is handed out and
    /// the sizes needed are returned; the next call gets everything.
    /// </summary>
    public bool QueryFinished(Span<byte> entries, Span<int> failedBlocks, out int entryBytes, out int failedCount)
    {
        lock (_sync)
        {
            Poll();
            return _report.TryDrain(entries, failedBlocks, out entryBytes, out failedCount);
        }
    }

    /// <summary>Managed form of <see cref="QueryFinished(Span{byte}, Span{int}, out int, out int)"/>.</summary>
    public (List<(FinishedKind Kind, string Id)> Entries, List<int> FailedBlocks) QueryFinished()
    {
        lock (_sync)
        {
            Poll();
            return _report.Take();
        }
    }

    // Under the lock: what the copy and tier threads finished is applied, transports retired by
    // a re-registration are freed once nothing uses them.
    private void Poll()
    {
        ThrowIfShutDown();
        _transfer.Pump();
        ApplyCompletions();
        _devices.DisposeRetiredIfIdle();
    }

    /// <summary>
    /// Drops every cached block (vLLM's <c>reset_cache</c>). Pending tasks are cancelled and
    /// still reported, so vLLM's held blocks are released normally. From now on nothing is
    /// offered or saved until the cache is cleared: at once, or — when a read from or a write to
    /// the remote store is still out (a store that does not answer would hold the caller for up
    /// to remote_timeout_ms) — as soon as the last of them ends, on whichever call sees it.
    /// </summary>
    public void Reset()
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            _metrics.Reset();
            foreach (TransferTask t in _planned.ToArray()) CancelTask(t);
            foreach (TransferTask t in _inFlight) t.Cancel();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                _transfer.Pump();
                ApplyCompletions();
                if (!AnyInFlightBesidesRemoteReads()) break;
                if (sw.ElapsedMilliseconds > CancelWaitMs)
                    ThrowHelper.Throw(FlexKvStatus.Internal, $"reset: {_inFlight.Count} transfers did not stop within {CancelWaitMs} ms");
                _transfer.WaitForCompletion(_transfer.CompletionCount, 10);
            }
            foreach (RequestState s in _requests.All)
            {
                _planner.ReleaseMatch(s);
                _tiers.DropLookup(s);
                s.RemoteAskedUpTo = 0; // the store may hold what the cleared index forgot
            }
            _clearPending = true;
            TryClearNow();
        }
    }

    // Copies and local reads end within milliseconds; reads from a shared store wait on it.
    private bool AnyInFlightBesidesRemoteReads()
    {
        foreach (TransferTask t in _inFlight)
            if (!_tiers.StagingFromAStoreThatMayStall(t)) return true;
        return false;
    }

    // The index is cleared only when no transfer can still write into or read from a CPU slot.
    private void TryClearNow()
    {
        _tiers.ApplyCompletions(Warnings);
        if (_inFlight.Count > 0 || _tiers.WritesPendingToAStoreThatMayStall()) return;
        if (!_tiers.WaitLocalWrites(CancelWaitMs, Warnings))
            ThrowHelper.Throw(FlexKvStatus.Internal, $"reset: {_tiers.WritesPending} tier writes did not finish within {CancelWaitMs} ms");
        _clearPending = false;
        _index.Clear();
        _tiers.Clear();
    }

    // Applies what the copy and tier threads finished: pins released, written blocks made ready
    // (or dropped), requests reported. Runs on the caller's thread under the lock.
    private void ApplyCompletions()
    {
        _tiers.ApplyCompletions(Warnings);
        while (_transfer.Completed.TryDequeue(out TransferTask? task)) ApplyCompletion(task);
        if (_clearPending) TryClearNow();
    }

    // On a tier's writer thread: written blocks release their CPU pins at once when the engine
    // lock is free (more CPU slots can be evicted), else at the next engine call.
    private void TryApplyTierWritesNow()
    {
        if (!Monitor.TryEnter(_sync)) return;
        try
        {
            if (!_shutDown) _tiers.ApplyCompletions(Warnings);
        }
        finally
        {
            Monitor.Exit(_sync);
        }
    }

    private void ApplyCompletion(TransferTask task)
    {
        _inFlight.Remove(task);
        task.State = task.IsCancelled ? TransferState.Cancelled
            : task.FailedCount > 0 ? TransferState.Failed : TransferState.Done;
        _completion.Complete(task);
    }

    // Called on a copy thread when a task ends: applied at once if the engine lock is free (the
    // blocks become matchable and the scheduler's next call has nothing to do), else left for
    // the next call. Never waits for the lock, so a thread holding it can wait for copies.
    private bool TryCompleteNow(TransferTask task)
    {
        if (!Monitor.TryEnter(_sync)) return false;
        try
        {
            if (_shutDown) return false;
            try
            {
                ApplyCompletions(); // earlier ones first: completion order is report order
                ApplyCompletion(task);
            }
            catch (Exception e)
            {
                // A bug, not an I/O fault; on a copy thread it must not kill the thread or the process.
                Warnings.Add($"internal error while completing a transfer: {e.GetType().Name}: {e.Message}");
            }
            return true;
        }
        finally
        {
            Monitor.Exit(_sync);
        }
    }
}
