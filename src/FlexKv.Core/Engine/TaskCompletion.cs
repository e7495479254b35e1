using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Engine;

/// <summary>
/// What an ended task (done, failed or cancelled) changes: its blocks' pins and states in the
/// index (a get's staged copies kept or dropped, a put's blocks made ready and written through
/// to the tiers), the report vLLM's next query gets (finished recving/sending, failed block ids)
/// and the counters; a finished request whose tasks all ended is forgotten. Owned by the engine lock.
/// </summary>
internal sealed class TaskCompletion(BlockIndex index, TierSet tiers, RequestTable requests, FinishedReport report,
    EngineStats stats, ObjectPool<TransferTask> taskPool)
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
                }
                else _stats.BlocksLoaded++;
            }
            _report.Add(FinishedKind.Recving, task.RequestId);
            if (s is not null) s.Get = null;
        }
        else
        {
            for (int i = 0; i < task.Count; i++)
            {
                bool ok = !cancelled && task.Failed[i] == 0;
                _index.CompleteWrite(task.Nodes[i], ok);
                if (ok) _stats.BlocksSaved++;
            }
            _tiers.WriteThrough(task);
            if (s is not null)
            {
                if (s.Hold) _report.Add(FinishedKind.Sending, task.RequestId);
                s.Put = null;
            }
        }
        _stats.TasksFinished++;
        if (s is not null && s.Finished && s.Get is null && s.Put is null) _requests.Forget(s);
        _taskPool.Return(task);
    }
}
