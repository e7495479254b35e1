using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

/// <summary>
/// The engine's counters and levels as <see cref="EngineStats"/>: the counters the contract
/// calls increment under the engine lock, plus the levels and counters its parts keep (index,
/// copy threads, tiers). <see cref="Read"/> runs without the engine lock: a copy thread may hold
/// it for a while completing a large transfer, and a counter snapshot needs no consistency
/// between counters; each value is read as it is now (64-bit reads are atomic here).
/// </summary>
internal sealed class EngineCounters(EngineStats counted, TransferEngine transfer, BlockIndex index, CpuTier cpu,
    RequestTable requests, List<TransferTask> planned, HashSet<TransferTask> inFlight, TierSet tiers)
{
    private readonly EngineStats _scratch = new(); // Read's, under _readSync
    private readonly object _readSync = new();

    /// <summary>An independent copy of everything (caller holds the engine lock).</summary>
    public EngineStats Snapshot(List<string> warnings)
    {
        Refresh(counted);
        counted.Warnings = warnings;
        return counted.Clone();
    }

    /// <summary>The numeric counters in <see cref="Metrics.StatsMetrics"/> order; allocates nothing.</summary>
    public int Read(Span<long> values)
    {
        lock (_readSync)
        {
            _scratch.CopyCountersFrom(counted);
            Refresh(_scratch);
            return Metrics.StatsMetrics.Fill(_scratch, values);
        }
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
