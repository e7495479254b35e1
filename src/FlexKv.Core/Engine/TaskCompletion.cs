using FlexKv.Core.Index;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Engine;

/// <summary>
/// What an ended task (done, failed or cancelled) changes: its blocks' pins and states in the
/// index (a get's staged copies kept or dropped, a put's blocks made ready and written through
/// to the tiers), the report vLLM's next query gets (finished recving/sending, failed block ids)
/// and the counters (the stats' and the metrics model's: blocks, bytes, failures and timing of
/// the copy to or from vLLM's cache); a finished request whose tasks all ended is forgotten.
/// Owned by the engine lock.
/// </summary>
internal sealed class TaskCompletion(BlockIndex index, TierSet tiers, RequestTable requests, FinishedReport report,
    EngineStats stats, ObjectPool<TransferTask> taskPool, EngineMetrics metrics, long blockBytes)
{
    private readonly BlockIndex _index = index;
    private readonly TierSet _tiers = tiers;
    private readonly RequestTable _requests = requests;
    private readonly FinishedReport _report = report;
    private readonly EngineStats _stats = stats;
    private readonly ObjectPool<TransferTask> _taskPool = taskPool;

    public void Complete(TransferTask task)
    {
        bool cancelled = task.State == TransferState.Cancelled;
        RequestState? s = _requests.Find(task.RequestId);
        TransferFlow flow = task.Kind == TransferKind.Get ? TransferFlow.H2D : TransferFlow.D2H;
        int moved = 0;
        if (task.Kind == TransferKind.Get)
        {
            // A task cancelled before launch never read its SSD blocks.
            bool launched = task.WasLaunched;
            for (int i = 0; i < task.Count; i++)
            {
                if (task.Source[i] != 0) _tiers.CompleteStaged(task, i, launched);
                _index.Unpin(task.Nodes[i]);
                if (cancelled) continue;
                if (task.Failed[i] != 0)
                {
                    _report.AddFailed(task.DeviceBlocks[i]);
                    _stats.BlocksFailed++;
                    // The block's first failure: a staged read's (checksum, ...) when it never reached its CPU slot.
                    metrics.Failed(flow, FailureReasons.From((BlockFailure)task.Failed[i]));
                }
                else moved++;
            }
            _stats.BlocksLoaded += moved;
            _report.Add(FinishedKind.Recving, task.RequestId);
            if (s is not null) s.Get = null;
        }
        else
        {
            for (int i = 0; i < task.Count; i++)
            {
                bool ok = !cancelled && task.Failed[i] == 0;
                _index.CompleteWrite(task.Nodes[i], ok);
                if (ok) moved++;
                else if (!cancelled) metrics.Failed(flow, FailureReasons.From((BlockFailure)task.Failed[i]));
            }
            _stats.BlocksSaved += moved;
            _tiers.WriteThrough(task);
            if (s is not null)
            {
                if (s.Hold) _report.Add(FinishedKind.Sending, task.RequestId);
                s.Put = null;
            }
        }
        CountTask(task, flow, cancelled, moved);
        _stats.TasksFinished++;
        if (s is not null && s.Finished && s.Get is null && s.Put is null) _requests.Forget(s);
        _taskPool.Return(task);
    }

    private void CountTask(TransferTask task, TransferFlow flow, bool cancelled, int moved)
    {
        if (cancelled)
        {
            metrics.Failed(flow, FailureReason.Cancelled, task.Count);
            return;
        }
        metrics.Moved(flow, moved, moved * blockBytes);
        if (task.CopyEndTicks != 0) metrics.Operation(flow, task.CopyEndTicks - task.CopyStartTicks);
        if (moved > 0) metrics.Request(task.Kind == TransferKind.Get ? RequestEvent.Loaded : RequestEvent.Saved);
    }
}
