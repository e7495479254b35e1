using FlexKv.Core.Engine;

namespace FlexKv.Core.Metrics;

/// <summary>
/// The metrics snapshot a caller reads every step (<c>flexkv_metrics_read</c>) without the JSON
/// of the full stats: one flat array of int64, first this table's entries (named as the stats
/// JSON keys; booleans read 0/1, milliseconds read microseconds), then the engine metrics
/// model's (<see cref="EngineMetricsLayout"/>: per tier, per direction, per reason, histograms).
/// Appending keeps readers that cached the names valid; reordering does not (the names export
/// says what each position is).
/// </summary>
internal static class StatsMetrics
{
    private static readonly (MetricInfo Info, Func<EngineStats, long> Read)[] s_table =
    [
        (C("match_calls", "lookups answered"), s => s.MatchCalls),
        (C("queried_tokens", "prompt tokens in full blocks that lookups looked at"), s => s.QueriedTokens),
        (C("matched_tokens", "tokens lookups offered beyond vLLM's own hit"), s => s.MatchedTokens),
        (C("blocks_loaded", "blocks loaded into the registered KV cache"), s => s.BlocksLoaded),
        (C("blocks_saved", "blocks saved from the registered KV cache"), s => s.BlocksSaved),
        (C("blocks_failed", "blocks whose load failed (recomputed by vLLM)"), s => s.BlocksFailed),
        (C("blocks_dropped", "blocks a save could not store (tier full of pinned blocks)"), s => s.BlocksDropped),
        (C("bytes_moved", "bytes the copy threads moved"), s => s.BytesMoved),
        (C("evictions", "blocks evicted from the CPU tier"), s => s.Evictions),
        (G("cpu_blocks_used", "CPU slots in use"), s => s.CpuBlocksUsed),
        (G("cpu_blocks_total", "CPU slots in total"), s => s.CpuBlocksTotal),
        (G("block_bytes", "bytes per block"), s => s.BlockBytes),
        (G("pinned_blocks", "pins held on index blocks"), s => s.PinnedBlocks),
        (G("pinned_cpu_blocks", "CPU slots held by pinned blocks"), s => s.PinnedCpuBlocks),
        (G("active_requests", "requests the engine tracks"), s => s.ActiveRequests),
        (G("tasks_planned", "tasks planned, not launched"), s => s.TasksPlanned),
        (G("tasks_in_flight", "tasks launched, not finished"), s => s.TasksInFlight),
        (C("tasks_finished", "tasks finished"), s => s.TasksFinished),
        (G("ssd_blocks_used", "SSD slots in use"), s => s.SsdBlocksUsed),
        (G("ssd_blocks_total", "SSD slots in total"), s => s.SsdBlocksTotal),
        (C("ssd_evictions", "blocks evicted from the SSD tier"), s => s.SsdEvictions),
        (C("ssd_blocks_written", "blocks written to SSD"), s => s.SsdBlocksWritten),
        (C("ssd_blocks_read", "blocks read from SSD"), s => s.SsdBlocksRead),
        (C("ssd_checksum_failures", "SSD blocks that failed their checksum"), s => s.SsdChecksumFailures),
        (C("ssd_write_errors", "SSD write errors"), s => s.SsdWriteErrors),
        (C("ssd_read_errors", "SSD read errors"), s => s.SsdReadErrors),
        (G("ssd_writes_pending", "SSD writes queued or running"), s => s.SsdWritesPending),
        (G("ssd_full", "1 while SSD writes are stopped by a full disk"), s => s.SsdFull ? 1 : 0),
        (G("remote_connected", "1 while the remote store is reachable"), s => s.RemoteConnected ? 1 : 0),
        (C("remote_lookups", "lookups sent to the remote store"), s => s.RemoteLookups),
        (C("remote_matched_blocks", "blocks matched from the remote store"), s => s.RemoteMatchedBlocks),
        (C("remote_blocks_written", "blocks written to the remote store"), s => s.RemoteBlocksWritten),
        (C("remote_blocks_read", "blocks read from the remote store"), s => s.RemoteBlocksRead),
        (C("remote_reads_missing", "remote reads that found the key gone"), s => s.RemoteReadsMissing),
        (C("remote_reads_corrupt", "remote reads that failed their checksum"), s => s.RemoteReadsCorrupt),
        (C("remote_reads_unavailable", "remote reads without an answer in time"), s => s.RemoteReadsUnavailable),
        (C("remote_writes_dropped", "remote writes dropped (store down, queue full, refused)"), s => s.RemoteWritesDropped),
        (G("remote_writes_pending", "remote writes queued or running"), s => s.RemoteWritesPending),
        (C("remote_store_write_us", "time inside remote write calls (µs)"), s => (long)(s.RemoteStoreWriteMs * 1000)),
        (C("remote_store_read_us", "time inside remote read calls (µs)"), s => (long)(s.RemoteStoreReadMs * 1000)),
        (G("registered", "1 once a KV cache is registered"), s => s.Registered ? 1 : 0),
        (C("remote_lookups_late", "remote lookups answered later than their budget (misses)"), s => s.RemoteLookupsLate),
        (G("remote_breaker_open", "1 while lookups skip a remote store that answered late"), s => s.RemoteBreakerOpen ? 1 : 0),
    ];

    /// <summary>Number of values in a snapshot.</summary>
    public static int Count => s_table.Length + EngineMetricsLayout.Count;

    /// <summary>Number of stats entries, where the engine metrics model's begin.</summary>
    public static int StatsCount => s_table.Length;

    /// <summary>What position <paramref name="i"/> of a snapshot is.</summary>
    public static MetricInfo Info(int i) => i < s_table.Length ? s_table[i].Info : EngineMetricsLayout.Infos[i - s_table.Length];

    /// <summary>Writes the stats entries (<see cref="StatsCount"/> values, as many as fit) through the table's readers.</summary>
    internal static void FillStatsByTable(EngineStats stats, Span<long> dst)
    {
        int n = Math.Min(dst.Length, s_table.Length);
        for (int i = 0; i < n; i++) dst[i] = s_table[i].Read(stats);
    }

    /// <summary>
    /// Writes the stats entries into <paramref name="d"/> (at least <see cref="StatsCount"/> long):
    /// the table's readers as one straight run of stores. The snapshot is read right after a
    /// connector call, with cold caches, where 43 delegate calls are 43 methods
    /// scattered in memory; a test keeps this in step with the table.
    /// </summary>
    internal static void FillStats(EngineStats s, Span<long> d)
    {
        if (d.Length < s_table.Length)
        {
            FillStatsByTable(s, d);
            return;
        }
        d[0] = s.MatchCalls;
        d[1] = s.QueriedTokens;
        d[2] = s.MatchedTokens;
        d[3] = s.BlocksLoaded;
        d[4] = s.BlocksSaved;
        d[5] = s.BlocksFailed;
        d[6] = s.BlocksDropped;
        d[7] = s.BytesMoved;
        d[8] = s.Evictions;
        d[9] = s.CpuBlocksUsed;
        d[10] = s.CpuBlocksTotal;
        d[11] = s.BlockBytes;
        d[12] = s.PinnedBlocks;
        d[13] = s.PinnedCpuBlocks;
        d[14] = s.ActiveRequests;
        d[15] = s.TasksPlanned;
        d[16] = s.TasksInFlight;
        d[17] = s.TasksFinished;
        d[18] = s.SsdBlocksUsed;
        d[19] = s.SsdBlocksTotal;
        d[20] = s.SsdEvictions;
        d[21] = s.SsdBlocksWritten;
        d[22] = s.SsdBlocksRead;
        d[23] = s.SsdChecksumFailures;
        d[24] = s.SsdWriteErrors;
        d[25] = s.SsdReadErrors;
        d[26] = s.SsdWritesPending;
        d[27] = s.SsdFull ? 1 : 0;
        d[28] = s.RemoteConnected ? 1 : 0;
        d[29] = s.RemoteLookups;
        d[30] = s.RemoteMatchedBlocks;
        d[31] = s.RemoteBlocksWritten;
        d[32] = s.RemoteBlocksRead;
        d[33] = s.RemoteReadsMissing;
        d[34] = s.RemoteReadsCorrupt;
        d[35] = s.RemoteReadsUnavailable;
        d[36] = s.RemoteWritesDropped;
        d[37] = s.RemoteWritesPending;
        d[38] = (long)(s.RemoteStoreWriteMs * 1000);
        d[39] = (long)(s.RemoteStoreReadMs * 1000);
        d[40] = s.Registered ? 1 : 0;
        d[41] = s.RemoteLookupsLate;
        d[42] = s.RemoteBreakerOpen ? 1 : 0;
    }

    private static MetricInfo C(string name, string help) => new(name, MetricKind.Counter, help);
    private static MetricInfo G(string name, string help) => new(name, MetricKind.Gauge, help);
}
