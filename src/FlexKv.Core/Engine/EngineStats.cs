using System.Text.Json.Serialization;

namespace FlexKv.Core.Engine;

/// <summary>A snapshot of the engine's counters (serialised as the stats JSON).</summary>
internal sealed class EngineStats
{
    /// <summary>Match calls.</summary>
    [JsonPropertyName("match_calls")] public long MatchCalls { get; set; }
    /// <summary>Prompt tokens in full blocks that matches looked at.</summary>
    [JsonPropertyName("queried_tokens")] public long QueriedTokens { get; set; }
    /// <summary>Tokens matches returned beyond vLLM's own hit.</summary>
    [JsonPropertyName("matched_tokens")] public long MatchedTokens { get; set; }
    /// <summary>Blocks loaded into the registered cache.</summary>
    [JsonPropertyName("blocks_loaded")] public long BlocksLoaded { get; set; }
    /// <summary>Blocks saved from the registered cache.</summary>
    [JsonPropertyName("blocks_saved")] public long BlocksSaved { get; set; }
    /// <summary>Blocks whose load failed (reported for recompute).</summary>
    [JsonPropertyName("blocks_failed")] public long BlocksFailed { get; set; }
    /// <summary>Blocks a put could not store because the tier was full of pinned blocks.</summary>
    [JsonPropertyName("blocks_dropped")] public long BlocksDropped { get; set; }
    /// <summary>Bytes moved by the copy threads.</summary>
    [JsonPropertyName("bytes_moved")] public long BytesMoved { get; set; }
    /// <summary>Blocks evicted from the CPU tier.</summary>
    [JsonPropertyName("evictions")] public long Evictions { get; set; }
    /// <summary>CPU slots in use.</summary>
    [JsonPropertyName("cpu_blocks_used")] public long CpuBlocksUsed { get; set; }
    /// <summary>CPU slots in total.</summary>
    [JsonPropertyName("cpu_blocks_total")] public long CpuBlocksTotal { get; set; }
    /// <summary>Bytes per block.</summary>
    [JsonPropertyName("block_bytes")] public long BlockBytes { get; set; }
    /// <summary>Bytes reserved for the CPU pool.</summary>
    [JsonPropertyName("cpu_reserved_bytes")] public long CpuReservedBytes { get; set; }
    /// <summary>Pins held on index blocks (0 when idle).</summary>
    [JsonPropertyName("pinned_blocks")] public long PinnedBlocks { get; set; }
    /// <summary>CPU slots held by pinned blocks (cannot be evicted now).</summary>
    [JsonPropertyName("pinned_cpu_blocks")] public long PinnedCpuBlocks { get; set; }
    /// <summary>Requests the engine tracks.</summary>
    [JsonPropertyName("active_requests")] public long ActiveRequests { get; set; }
    /// <summary>Tasks planned but not launched.</summary>
    [JsonPropertyName("tasks_planned")] public long TasksPlanned { get; set; }
    /// <summary>Tasks launched and not finished.</summary>
    [JsonPropertyName("tasks_in_flight")] public long TasksInFlight { get; set; }
    /// <summary>Tasks finished since start.</summary>
    [JsonPropertyName("tasks_finished")] public long TasksFinished { get; set; }
    /// <summary>SSD slots in use.</summary>
    [JsonPropertyName("ssd_blocks_used")] public long SsdBlocksUsed { get; set; }
    /// <summary>SSD slots in total (0: no SSD tier).</summary>
    [JsonPropertyName("ssd_blocks_total")] public long SsdBlocksTotal { get; set; }
    /// <summary>Blocks evicted from the SSD tier.</summary>
    [JsonPropertyName("ssd_evictions")] public long SsdEvictions { get; set; }
    /// <summary>Blocks written to SSD.</summary>
    [JsonPropertyName("ssd_blocks_written")] public long SsdBlocksWritten { get; set; }
    /// <summary>Blocks read from SSD.</summary>
    [JsonPropertyName("ssd_blocks_read")] public long SsdBlocksRead { get; set; }
    /// <summary>SSD blocks whose checksum did not match (never served).</summary>
    [JsonPropertyName("ssd_checksum_failures")] public long SsdChecksumFailures { get; set; }
    /// <summary>SSD write errors.</summary>
    [JsonPropertyName("ssd_write_errors")] public long SsdWriteErrors { get; set; }
    /// <summary>SSD read errors.</summary>
    [JsonPropertyName("ssd_read_errors")] public long SsdReadErrors { get; set; }
    /// <summary>SSD writes queued or running.</summary>
    [JsonPropertyName("ssd_writes_pending")] public long SsdWritesPending { get; set; }
    /// <summary>Whether SSD writes stopped because the disk is full.</summary>
    [JsonPropertyName("ssd_full")] public bool SsdFull { get; set; }
    /// <summary>Whether the SSD files use O_DIRECT.</summary>
    [JsonPropertyName("ssd_direct")] public bool SsdDirect { get; set; }
    /// <summary>Blocks restored from the SSD journal at start-up.</summary>
    [JsonPropertyName("ssd_restored_blocks")] public long SsdRestoredBlocks { get; set; }
    /// <summary>SSD writes in flight per directory (the I/O threads that write runs at once).</summary>
    [JsonPropertyName("ssd_write_depth")] public long SsdWriteDepth { get; set; }
    /// <summary>SSD reads in flight (one reader thread).</summary>
    [JsonPropertyName("ssd_read_depth")] public long SsdReadDepth { get; set; }
    /// <summary>Whether a remote tier is configured.</summary>
    [JsonPropertyName("remote_enabled")] public bool RemoteEnabled { get; set; }
    /// <summary>Whether the remote store is reachable now.</summary>
    [JsonPropertyName("remote_connected")] public bool RemoteConnected { get; set; }
    /// <summary>Remote requests in flight per value connection in a batch.</summary>
    [JsonPropertyName("remote_pipeline_depth")] public long RemotePipelineDepth { get; set; }
    /// <summary>Connections carrying the remote tier's values (each with up to remote_pipeline_depth in flight).</summary>
    [JsonPropertyName("remote_connections")] public long RemoteConnections { get; set; }

    /// <summary>Connections carrying the remote tier's read values (one of FlexKv's own on a plain server).</summary>
    [JsonPropertyName("remote_read_connections")] public long RemoteReadConnections { get; set; }

    /// <summary>Remote read values requested ahead per read connection.</summary>
    [JsonPropertyName("remote_read_pipeline_depth")] public long RemoteReadPipelineDepth { get; set; }

    /// <summary>Remote read batches received straight into the CPU slots (a plain connection to one Redis server).</summary>
    [JsonPropertyName("remote_direct_read_batches")] public long RemoteDirectReadBatches { get; set; }
    /// <summary>Time spent inside remote write calls (ms).</summary>
    [JsonPropertyName("remote_store_write_ms")] public double RemoteStoreWriteMs { get; set; }
    /// <summary>Time spent inside remote read calls (ms).</summary>
    [JsonPropertyName("remote_store_read_ms")] public double RemoteStoreReadMs { get; set; }
    /// <summary>Lookups sent to the remote store.</summary>
    [JsonPropertyName("remote_lookups")] public long RemoteLookups { get; set; }
    /// <summary>Lookups whose answer came later than remote_lookup_budget_ms (counted as misses).</summary>
    [JsonPropertyName("remote_lookups_late")] public long RemoteLookupsLate { get; set; }
    /// <summary>Whether lookups skip the remote store now because it answered late (the breaker is open).</summary>
    [JsonPropertyName("remote_breaker_open")] public bool RemoteBreakerOpen { get; set; }
    /// <summary>Blocks matched from the remote store.</summary>
    [JsonPropertyName("remote_matched_blocks")] public long RemoteMatchedBlocks { get; set; }
    /// <summary>Blocks written to the remote store.</summary>
    [JsonPropertyName("remote_blocks_written")] public long RemoteBlocksWritten { get; set; }
    /// <summary>Blocks read from the remote store.</summary>
    [JsonPropertyName("remote_blocks_read")] public long RemoteBlocksRead { get; set; }
    /// <summary>Remote reads that found the key gone.</summary>
    [JsonPropertyName("remote_reads_missing")] public long RemoteReadsMissing { get; set; }
    /// <summary>Remote reads whose value failed its checksum.</summary>
    [JsonPropertyName("remote_reads_corrupt")] public long RemoteReadsCorrupt { get; set; }
    /// <summary>Remote reads that got no answer in time.</summary>
    [JsonPropertyName("remote_reads_unavailable")] public long RemoteReadsUnavailable { get; set; }
    /// <summary>Remote writes dropped (store down, queue full or refused).</summary>
    [JsonPropertyName("remote_writes_dropped")] public long RemoteWritesDropped { get; set; }
    /// <summary>Remote writes queued or running.</summary>
    [JsonPropertyName("remote_writes_pending")] public long RemoteWritesPending { get; set; }
    /// <summary>Degraded-operation messages (e.g. no O_DIRECT, disk full).</summary>
    [JsonPropertyName("warnings")] public List<string> Warnings { get; set; } = new();
    /// <summary>Whether a KV cache is registered.</summary>
    [JsonPropertyName("registered")] public bool Registered { get; set; }

    /// <summary>Copies the counters the engine itself increments (the rest it refreshes from its parts).</summary>
    internal void CopyCountersFrom(EngineStats o)
    {
        MatchCalls = o.MatchCalls;
        QueriedTokens = o.QueriedTokens;
        MatchedTokens = o.MatchedTokens;
        BlocksLoaded = o.BlocksLoaded;
        BlocksSaved = o.BlocksSaved;
        BlocksFailed = o.BlocksFailed;
        BlocksDropped = o.BlocksDropped;
        TasksFinished = o.TasksFinished;
    }

    /// <summary>An independent copy (the engine hands out snapshots, never its live counters).</summary>
    public EngineStats Clone()
    {
        var c = (EngineStats)MemberwiseClone();
        c.Warnings = new List<string>(Warnings);
        return c;
    }
}

/// <summary>Source-generated JSON for <see cref="EngineStats"/>.</summary>
[JsonSerializable(typeof(EngineStats))]
internal sealed partial class EngineStatsJsonContext : JsonSerializerContext;
