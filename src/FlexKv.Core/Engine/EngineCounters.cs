using FlexKv.Core.Index;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using L = FlexKv.Core.Metrics.EngineMetricsLayout;

namespace FlexKv.Core.Engine;

/// <summary>
/// The engine's counters and levels: as <see cref="EngineStats"/> (the counters the contract
/// calls increment under the engine lock, plus the levels and counters its parts keep: index,
/// copy threads, tiers) and as the metrics snapshot (those, then the engine metrics model:
/// <see cref="EngineMetrics"/>' array and the levels computed from the parts at each read).
/// <see cref="Read"/> runs without the engine lock: a copy thread may hold it for a while
/// completing a large transfer, and a counter snapshot needs no consistency between counters;
/// each value is read as it is now (64-bit reads are atomic here).
/// </summary>
internal sealed class EngineCounters(EngineStats counted, EngineMetrics metrics, TransferEngine transfer, BlockIndex index,
    CpuTier cpu, RequestTable requests, List<TransferTask> planned, HashSet<TransferTask> inFlight, TierSet tiers)
{
    private readonly EngineStats _scratch = new(); // Read's, under _readSync
    private readonly long[] _whole = new long[StatsMetrics.Count]; // Read's, for a caller's buffer that holds fewer
    private readonly object _readSync = new();

    /// <summary>An independent copy of everything (caller holds the engine lock).</summary>
    public EngineStats Snapshot(List<string> warnings)
    {
        Refresh(counted);
        counted.Warnings = warnings;
        return counted.Clone();
    }

    /// <summary>The metrics snapshot in <see cref="StatsMetrics"/> order, as many values as fit; allocates nothing.</summary>
    public int Read(Span<long> values)
    {
        lock (_readSync)
        {
            Span<long> all = values.Length >= StatsMetrics.Count ? values : _whole;
            _scratch.CopyCountersFrom(counted);
            Refresh(_scratch);
            StatsMetrics.FillStats(_scratch, all);
            Span<long> model = all.Slice(StatsMetrics.StatsCount, L.Count);
            metrics.CopyTo(model);
            FillComputed(model);
            if (all.Length != values.Length) _whole.AsSpan(0, values.Length).CopyTo(values);
            return StatsMetrics.Count;
        }
    }

    private void FillComputed(Span<long> model)
    {
        model[L.StoredCount..].Clear();
        long blockBytes = cpu.BlockBytes;
        model[L.SlotTier(L.CapacityBlocks, MetricTier.Cpu)] = index.Capacity;
        model[L.SlotTier(L.UsedBlocks, MetricTier.Cpu)] = index.UsedSlots;
        model[L.SlotTier(L.CapacityBytes, MetricTier.Cpu)] = index.Capacity * blockBytes;
        model[L.SlotTier(L.UsedBytes, MetricTier.Cpu)] = index.UsedSlots * blockBytes;
        model[L.SlotTier(L.Evictions, MetricTier.Cpu)] = index.Evictions;
        model[L.CopyQueue] = transfer.QueuedSlices;
        tiers.FillMetrics(model);
    }

    private void Refresh(EngineStats s)
    {
        s.BytesMoved = transfer.BytesMoved;
        s.Evictions = index.Evictions;
        s.CpuBlocksUsed = index.UsedSlots;
        s.CpuBlocksTotal = index.Capacity;
        s.BlockBytes = cpu.BlockBytes;
        s.CpuReservedBytes = cpu.ReservedBytes;
        s.PinnedBlocks = index.TotalPins;
        s.PinnedCpuBlocks = index.PinnedCpuSlots;
        s.ActiveRequests = requests.Count;
        s.TasksPlanned = planned.Count;
        s.TasksInFlight = inFlight.Count;
        s.Registered = transfer.Transport is not null;
        tiers.FillStats(s);
    }
}
