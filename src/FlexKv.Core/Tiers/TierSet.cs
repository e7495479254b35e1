using FlexKv.Core.Engine;
using FlexKv.Core.Index;
using FlexKv.Core.Metrics;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers;

/// <summary>
/// The lower tiers, hot to cold (tier t is number t in the index), and the routing between them
/// and the CPU tier: where a load's block comes from (the first tier that holds it, read into a
/// CPU slot first), where a save is written through (every tier that takes it), the order in
/// which a load's staged reads run (hot to cold, then the copy threads), and how their finished
/// writes reach the index. Owned by the engine; called under its lock except
/// <see cref="AfterStage"/>, which a tier's reader thread calls. It counts what moves between
/// the CPU tier and the lower tiers (blocks, bytes, failures; a staged read's timing).
/// </summary>
internal sealed partial class TierSet
{
    private readonly ILowerTier[] _tiers;
    private readonly int[] _writesPending;
    private readonly BlockIndex _index;
    private readonly Func<TransferTask, bool> _toCopyThreads;
    private readonly object? _owner; // the engine lock (debug checks)
    private readonly MetricTier[] _labels;
    private readonly EngineMetrics _metrics;
    private readonly long _blockBytes;

    public TierSet(ILowerTier[] tiers, BlockIndex index, Func<TransferTask, bool> toCopyThreads, object? owner = null,
        EngineMetrics? metrics = null, long blockBytes = 0)
    {
        _owner = owner;
        _tiers = tiers;
        _index = index;
        _toCopyThreads = toCopyThreads;
        _metrics = metrics ?? new EngineMetrics();
        _blockBytes = blockBytes;
        _writesPending = new int[tiers.Length];
        _labels = new MetricTier[tiers.Length];
        for (int t = 0; t < tiers.Length; t++)
        {
            _labels[t] = MetricTiers.FromName(tiers[t].Name);
            int number = index.AddTier(tiers[t].Slots, _labels[t]);
            tiers[t].Attach(index, number);
        }
    }

    /// <summary>The name the metrics and KV events give lower tier <paramref name="t"/>.</summary>
    public MetricTier LabelOf(int t) => _labels[t];

    /// <summary>Opens the tiers <paramref name="openers"/> configure, hot to cold; closes the opened ones if one fails.</summary>
    public static ILowerTier[] Open(IEnumerable<Func<TierContext, ILowerTier?>> openers, TierContext ctx)
    {
        var opened = new List<ILowerTier>();
        try
        {
            foreach (var open in openers)
                if (open(ctx) is { } tier) opened.Add(tier);
            return [.. opened];
        }
        catch
        {
            foreach (ILowerTier t in opened)
                if (t.Stop(10_000)) t.Abandon(); // a failed create leaves nothing behind
            throw;
        }
    }

    public int Count => _tiers.Length;

    public ILowerTier this[int t] => _tiers[t];

    /// <summary>The tier of type <typeparamref name="T"/>, if the engine has one.</summary>
    public T? Find<T>() where T : class, ILowerTier
    {
        foreach (ILowerTier t in _tiers)
            if (t is T found) return found;
        return null;
    }

    /// <summary>Whether any tier can hold a block the CPU tier does not (so loads may need staging).</summary>
    public bool Any => _tiers.Length > 0;

    /// <summary>Engine creation can no longer fail.</summary>
    public void Commit()
    {
        foreach (ILowerTier t in _tiers) t.Commit();
    }

    // ---- loads -------------------------------------------------------------------------------

    /// <summary>
    /// Plans loading <paramref name="node"/> into <paramref name="deviceBlock"/>: from its CPU
    /// copy, else read first from the hottest tier that holds it into a CPU slot it is then
    /// cached in. Without a CPU slot to stage through, vLLM recomputes the block (a load error).
    /// </summary>
    public void AddLoad(TransferTask task, int deviceBlock, int node, long clock)
    {
        if (_index.StateOf(node) == BlockState.Ready)
        {
            task.Add(deviceBlock, _index.SlotOf(node), node);
            return;
        }
        int t = _index.FirstReadableTier(node);
        if (t >= 0 && _index.TryPromote(node, clock, out int slot))
        {
            task.Add(deviceBlock, slot, node);
            task.FromTier(t, _index.TierSlotOf(node, t), _index.KeyOf(node));
            return;
        }
        // Being loaded for another request right now, or no CPU slot free.
        task.Add(deviceBlock, -1, node);
        task.Fail(task.Count - 1, BlockFailure.NoCpuSlot);
    }

    /// <summary>Starts a launched get: its staged reads, hot tier first, then the copy threads.</summary>
    public bool Launch(TransferTask task) => Next(task, -1);

    /// <summary>A tier's reads of <paramref name="task"/> ended (its reader thread): the next tier, or the copy.</summary>
    public bool AfterStage(TransferTask task)
    {
        CountStage(task, task.Stage);
        return Next(task, task.Stage);
    }

    // The stage's reads are all done and the copy threads have not seen the task yet, so its
    // blocks from tier t say exactly how their reads went.
    private void CountStage(TransferTask task, int t)
    {
        TransferFlow flow = TransferFlows.ReadFrom(_labels[t]);
        if (flow == TransferFlow.None) return;
        byte source = (byte)(t + 1);
        int ok = 0;
        for (int i = 0; i < task.Count; i++)
        {
            if (task.Source[i] != source) continue;
            if (task.Failed[i] == 0) ok++;
            else _metrics.Failed(flow, FailureReasons.From((BlockFailure)task.Failed[i]));
        }
        _metrics.Moved(flow, ok, ok * _blockBytes);
        _metrics.Operation(flow, EngineMetrics.Now() - task.StageStartTicks);
    }

    private bool Next(TransferTask task, int after)
    {
        for (int t = after + 1; t < _tiers.Length; t++)
        {
            if ((task.StageMask & (1 << t)) == 0) continue;
            task.Stage = t;
            task.State = TransferState.Launched;
            task.StageStartTicks = EngineMetrics.Now();
            _tiers[t].SubmitReads(task, t);
            return true;
        }
        task.Stage = -1;
        return _toCopyThreads(task);
    }

    /// <summary>Whether a launched task waits on reads that may wait on another machine.</summary>
    public bool StagingFromAStoreThatMayStall(TransferTask task) =>
        task.Stage >= 0 && _tiers[task.Stage].ReadsMayStall && task.StagingFrom(task.Stage);

    /// <summary>A staged block's read ended: its CPU copy is kept when it arrived; a bad tier copy goes.</summary>
    public void CompleteStaged(TransferTask task, int i, bool launched)
    {
        int node = task.Nodes[i];
        var failure = (BlockFailure)task.Failed[i];
        _index.CompleteWrite(node, launched && failure == BlockFailure.None);
        if (failure.LosesTierCopy())
            _index.DropTierCopy(node, task.Source[i] - 1, failure == BlockFailure.Missing ? RemovalCause.Evicted : RemovalCause.Dropped);
    }

    // ---- saves -------------------------------------------------------------------------------

    /// <summary>
    /// After a put: each tier that takes writes now gets the saved blocks in the background
    /// (write-through; the save is complete for vLLM once the bytes are in the CPU tier). An
    /// owned tier takes a block only after its parent, so it stays prefix-closed; the CPU copy is
    /// pinned until the tier's write ends.
    /// </summary>
    public void WriteThrough(TransferTask put)
    {
        LockOwner.Holds(_owner, "the tiers' writes");
        for (int t = 0; t < _tiers.Length; t++)
        {
            ILowerTier tier = _tiers[t];
            TransferFlow flow = TransferFlows.WriteTo(_labels[t]);
            if (!tier.IsAvailable && tier.Slots is not null)
            {
                // An owned tier that takes nothing now (disk full): its blocks stay in the hotter tiers.
                for (int i = 0; i < put.Count; i++)
                    if (_index.StateOf(put.Nodes[i]) == BlockState.Ready) _metrics.Failed(flow, FailureReason.DiskFull);
                continue;
            }
            for (int i = 0; i < put.Count; i++)
            {
                int node = put.Nodes[i];
                if (_index.StateOf(node) != BlockState.Ready) continue;
                int slot = -1;
                if (tier.Slots is not null)
                {
                    if (!_index.TryBeginTierWrite(node, t, out slot)) continue;
                }
                else _index.Pin(node);
                int parent = _index.ParentOf(node);
                var w = new TierWrite(node, slot, _index.SlotOf(node), _index.KeyOf(node),
                    parent >= 0 ? _index.KeyOf(parent) : 0, parent >= 0);
                if (tier.TryWrite(w)) _writesPending[t]++;
                else
                {
                    _metrics.Failed(flow, tier.IsAvailable ? FailureReason.QueueFull
                        : tier.Slots is null ? FailureReason.Unavailable : FailureReason.DiskFull);
                    EndWrite(t, node, ok: false);
                }
            }
        }
    }

    private void EndWrite(int t, int node, bool ok)
    {
        if (_tiers[t].Slots is not null) _index.CompleteTierWrite(node, t, ok);
        else
        {
            if (ok) _index.NoteTierStored(node, t); // the index keeps no copy of a hint tier's writes
            _index.Unpin(node); // a hint tier's write only kept the CPU copy as its source
        }
    }

    /// <summary>Applies the tiers' finished writes and their warnings.</summary>
    public void ApplyCompletions(List<string> warnings)
    {
        LockOwner.Holds(_owner, "the tiers' completions");
        for (int t = 0; t < _tiers.Length; t++)
        {
            ILowerTier tier = _tiers[t];
            while (tier.Warnings.TryDequeue(out string? w)) warnings.Add(w);
            TransferFlow flow = TransferFlows.WriteTo(_labels[t]);
            while (tier.CompletedWrites.TryDequeue(out TierWriteDone done))
            {
                _writesPending[t]--;
                if (done.Ok) _metrics.Moved(flow, 1, _blockBytes);
                else _metrics.Failed(flow, done.Why == FailureReason.None ? FailureReason.IoError : done.Why);
                EndWrite(t, done.Node, done.Ok);
            }
        }
    }

    /// <summary>Writes still out to any tier.</summary>
    public int WritesPending
    {
        get
        {
            int n = 0;
            foreach (int p in _writesPending) n += p;
            return n;
        }
    }

    /// <summary>Writes still out to tiers whose writes may wait on another machine.</summary>
    public bool WritesPendingToAStoreThatMayStall()
    {
        for (int t = 0; t < _tiers.Length; t++)
            if (_tiers[t].ReadsMayStall && _writesPending[t] > 0) return true;
        return false;
    }

    /// <summary>Waits (bounded) until writes to tiers that answer locally have ended.</summary>
    public bool WaitLocalWrites(int timeoutMs, List<string> warnings)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            ApplyCompletions(warnings);
            bool busy = false;
            for (int t = 0; t < _tiers.Length; t++) busy |= !_tiers[t].ReadsMayStall && _writesPending[t] > 0;
            if (!busy) return true;
            if (sw.ElapsedMilliseconds > timeoutMs) return false;
            Thread.Sleep(1);
        }
    }

    // ---- the rest ----------------------------------------------------------------------------

    /// <summary>The index was cleared: every tier forgets its blocks.</summary>
    public void Clear()
    {
        foreach (ILowerTier t in _tiers) t.Clear();
    }

    public void FillStats(EngineStats s)
    {
        for (int t = 0; t < _tiers.Length; t++) _tiers[t].FillStats(s, _writesPending[t]);
    }

    /// <summary>
    /// Adds the lower tiers' slots, use, evictions and queue depths to the computed entries of
    /// the engine metrics model (<paramref name="model"/>: the model's part of a snapshot). Runs
    /// on the metrics reader without the engine lock: each value is read as it is now.
    /// </summary>
    public void FillMetrics(Span<long> model)
    {
        for (int t = 0; t < _tiers.Length; t++)
        {
            MetricTier label = _labels[t];
            Add(model, EngineMetricsLayout.SlotTier(EngineMetricsLayout.CapacityBlocks, label), _index.TierCapacity(t));
            Add(model, EngineMetricsLayout.SlotTier(EngineMetricsLayout.UsedBlocks, label), _index.TierUsedSlots(t));
            Add(model, EngineMetricsLayout.SlotTier(EngineMetricsLayout.CapacityBytes, label), _index.TierCapacity(t) * _blockBytes);
            Add(model, EngineMetricsLayout.SlotTier(EngineMetricsLayout.UsedBytes, label), _index.TierUsedSlots(t) * _blockBytes);
            Add(model, EngineMetricsLayout.SlotTier(EngineMetricsLayout.Evictions, label), _index.TierEvictions(t));
            Add(model, EngineMetricsLayout.TierQueue(label, reads: false), _tiers[t].QueuedWrites);
            Add(model, EngineMetricsLayout.TierQueue(label, reads: true), _tiers[t].QueuedReads);
        }
    }

    private static void Add(Span<long> model, int at, long value)
    {
        if (at >= 0) model[at] += value;
    }

    /// <summary>Stops every tier (bounded each); returns whether all stopped.</summary>
    public bool Stop(int timeoutMs)
    {
        bool all = true;
        foreach (ILowerTier t in _tiers) all &= t.Stop(timeoutMs);
        return all;
    }
}
