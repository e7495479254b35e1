using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

internal sealed partial class KvEngine
{
    /// <summary>
    /// vLLM's <c>request_finished</c>. With <paramref name="save"/>, plans a put of the full
    /// blocks whose KV exists (all tokens but the last, whose KV is never computed) that the
    /// index lacks, from the request's <paramref name="blockIds"/> (block 0 first). Returns true
    /// when vLLM must keep the blocks until the request is reported as finished sending.
    /// A request the engine never saw is accepted when its tokens are given (vLLM can abort a
    /// request before matching it). A load still in flight is cancelled; its end is still
    /// reported as finished receiving, because vLLM holds such blocks until then.
    /// </summary>
    public bool RequestFinished(ReadOnlySpan<char> requestId, ReadOnlySpan<long> tokens, int numTokens,
        ReadOnlySpan<int> blockIds, bool save, ReadOnlySpan<byte> utf8Namespace = default)
    {
        RequestChecks.Tokens(requestId, tokens, numTokens);
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions();
            // Validate before any state changes, so a rejected call leaves the request as it was.
            int saveBlocks = Math.Min(Math.Max(numTokens - 1, 0) / TokensPerBlock, blockIds.Length);
            if (save) _transfer.Transport?.Layout.CheckBlockIds(blockIds[..saveBlocks]);
            RequestState? s = _requests.Find(requestId);
            if (s is null)
            {
                if (_requests.RecentlyFinished(requestId))
                    ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' already finished");
                if (tokens.IsEmpty && numTokens > 0) ThrowHelper.UnknownRequest(requestId.ToString());
                s = _requests.Add(requestId, _hasher.SeedFor(utf8Namespace));
            }
            else if (s.Finished)
                ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' already finished");

            Extend(s, requestId, tokens, numTokens);

            _planner.ReleaseMatch(s);
            _tiers.DropLookup(s);
            bool loading = s.Get is not null;
            _metrics.Request(Metrics.RequestEvent.Finished);
            if (loading)
            {
                _metrics.Request(Metrics.RequestEvent.Aborted);
                CancelTask(s.Get!);
            }
            // Set after the cancel: a planned load completes inside CancelTask, and a finished
            // request would be forgotten there and then once more below.
            s.Finished = true;
            // A request whose load never ended computed nothing, so there is nothing to save.
            if (save && !loading && _transfer.Transport is not null && numTokens > 0 && !_clearPending &&
                _planner.PlanPut(s, saveBlocks, blockIds) is { } put)
            {
                s.Put = put;
                _planned.Add(put);
            }
            s.Hold = s.Put is not null;
            if (s.Get is null && s.Put is null) _requests.Forget(s);
            return s.Hold;
        }
    }

    /// <summary>
    /// Preemption or abort of a request that stays known: drops its match pins and cancels its
    /// tasks. Returns only when no copy of those tasks is running any more, so vLLM may reuse the
    /// blocks at once. Cancelled tasks are still reported when they end.
    /// </summary>
    public void CancelRequest(ReadOnlySpan<char> requestId)
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            RequestState? s = _requests.Find(requestId);
            if (s is null) ThrowHelper.UnknownRequest(requestId.ToString());
            _metrics.Request(Metrics.RequestEvent.Preempted);
            _planner.ReleaseMatch(s);
            if (s.Get is not null) CancelTask(s.Get);
            if (s.Put is not null) CancelTask(s.Put);
            s.NumComputedTokens = 0;
            s.ComputedBlocks = 0;
        }
    }

    // A planned task is finished as cancelled right away; a launched one is flagged and waited
    // for until none of its copies runs, then ends through the normal completion path.
    private void CancelTask(TransferTask task)
    {
        task.Cancel();
        if (task.State == TransferState.Planned)
        {
            _planned.Remove(task);
            task.State = TransferState.Cancelled;
            _completion.Complete(task);
            return;
        }
        if (!TransferEngine.WaitNotExecuting(task, CancelWaitMs))
            ThrowHelper.Throw(FlexKvStatus.Internal, $"a copy for request '{task.RequestId}' did not stop within {CancelWaitMs} ms");
    }
}
