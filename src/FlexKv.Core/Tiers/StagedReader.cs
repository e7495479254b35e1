using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers;

/// <summary>
/// The reader side every tier has: a load's blocks staged from the tier are queued one by one
/// for its reader thread, read in batches by the tier's <c>read</c> (which records failed
/// blocks), and when the last of a task's blocks was read the task moves on (the next tier, or
/// the copy threads). A batch whose read throws fails its blocks with <c>onThrow</c>.
/// </summary>
internal sealed class StagedReader : IDisposable
{
    private readonly BatchWorker<(TransferTask Task, int Index)> _worker;
    private readonly Action<List<(TransferTask Task, int Index)>> _read;
    private readonly Func<TransferTask, bool> _readsDone;
    private readonly BlockFailure _onThrow;

    public StagedReader(string name, int maxBatch, Action<List<(TransferTask Task, int Index)>> read,
        Func<TransferTask, bool> readsDone, BlockFailure onThrow)
    {
        _read = read;
        _readsDone = readsDone;
        _onThrow = onThrow;
        _worker = new BatchWorker<(TransferTask, int)>(name, 1 << 16, maxBatch, Run, Fail);
    }

    /// <summary>Queues the blocks of <paramref name="task"/> staged from tier <paramref name="tier"/>.</summary>
    public void Submit(TransferTask task, int tier)
    {
        byte source = (byte)(tier + 1);
        int n = 0;
        for (int i = 0; i < task.Count; i++)
            if (task.Source[i] == source) n++;
        Volatile.Write(ref task.PendingReads, n);
        for (int i = 0; i < task.Count; i++)
            if (task.Source[i] == source) _worker.Add((task, i));
    }

    private bool Run(List<(TransferTask Task, int Index)> batch)
    {
        _read(batch);
        return Ended(batch);
    }

    private void Fail(List<(TransferTask Task, int Index)> batch, Exception e)
    {
        foreach (var (task, i) in batch) task.Fail(i, _onThrow);
        Ended(batch);
    }

    private bool Ended(List<(TransferTask Task, int Index)> batch)
    {
        bool go = true;
        foreach (var (task, _) in batch)
            if (Interlocked.Decrement(ref task.PendingReads) == 0) go &= _readsDone(task);
        return go;
    }

    /// <summary>Blocks waiting to be read.</summary>
    public int Count => _worker.Count;

    public bool Stop(int timeoutMs) => _worker.Stop(timeoutMs);

    public void Dispose() => _worker.Dispose();
}
