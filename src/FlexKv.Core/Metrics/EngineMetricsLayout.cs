namespace FlexKv.Core.Metrics;

/// <summary>
/// Where each entry of the engine metrics model sits in the snapshot, after the stats entries
/// of <see cref="StatsMetrics"/>. Two regions: the stored one (counters and histograms that
/// <see cref="EngineMetrics"/> keeps in one int64 array, entry i at raw position i) and the
/// computed one (levels and counters read from the engine's parts at each read, see
/// <see cref="Engine.EngineCounters"/>). The layout is the same for every engine of a process:
/// the names export is built once.
/// </summary>
internal static class EngineMetricsLayout
{
    /// <summary>Lower tiers with slots (capacity, use, evictions): the remote store is shared and sized elsewhere.</summary>
    public static readonly MetricTier[] SlotTiers = [MetricTier.Cpu, MetricTier.Ssd];

    /// <summary>The queues <c>queue_depth</c> names.</summary>
    public static readonly string[] Queues = ["copy", "ssd_write", "ssd_read", "remote_write", "remote_read"];

    /// <summary>Raw layout of one histogram: the buckets (not cumulative), the sum (µs) and the observations above the last bound.</summary>
    public static int HistogramStride => LatencyBuckets.Count + 2;

    public static readonly int MatchedByTier, NotOffered, Lookups, Blocks, Bytes, Ops, Failures, Requests, Resets;
    public static readonly int EventsRecorded, EventsDropped, EventsUnhashed;
    public static readonly int Histograms;
    /// <summary>Entries kept in <see cref="EngineMetrics"/>' array.</summary>
    public static readonly int StoredCount;
    public static readonly int CapacityBlocks, UsedBlocks, CapacityBytes, UsedBytes, Evictions, QueueDepth;

    private static readonly List<MetricInfo> s_infos = new();

    static EngineMetricsLayout()
    {
        MatchedByTier = Family("matched_tokens_by_tier", MetricKind.Counter,
            "tokens lookups offered beyond vLLM's own hit, by the tier a load reads them from", "tier", MetricTiers.Labels);
        NotOffered = Family("blocks_not_offered", MetricKind.Counter,
            "full blocks beyond vLLM's own hit a lookup did not offer, by why the offer ended", "reason", NotOfferedReasons.Labels);
        Lookups = Family("lookups", MetricKind.Counter,
            "lookups with blocks beyond vLLM's own hit, by how many of them they offered", "outcome", LookupOutcomes.Labels);
        Blocks = Family("transfer_blocks", MetricKind.Counter, "blocks moved, by direction", "direction", TransferFlows.Labels);
        Bytes = Family("transfer_bytes", MetricKind.Counter, "bytes moved, by direction", "direction", TransferFlows.Labels);
        Ops = Family("transfer_ops", MetricKind.Counter,
            "transfer operations ended (a task's copy or staged read; a writer's batch), by direction", "direction", TransferFlows.Labels);
        Failures = s_infos.Count;
        foreach (string dir in TransferFlows.Labels)
            foreach (string why in FailureReasons.Labels)
                s_infos.Add(new MetricInfo("transfer_failures", MetricKind.Counter, "blocks that did not move, by direction and reason",
                    [new("direction", dir), new("reason", why)]));
        Requests = Family("requests", MetricKind.Counter, "requests by what happened to them", "event", RequestEvents.Labels);
        Resets = Single("resets", MetricKind.Counter, "resets of the cache (vLLM's reset_prefix_cache)");
        EventsRecorded = Single("kv_events_recorded", MetricKind.Counter, "KV events recorded for vLLM (with kv_events_config)");
        EventsDropped = Single("kv_events_dropped", MetricKind.Counter, "KV events dropped, oldest first, because nobody took them in time");
        EventsUnhashed = Single("kv_events_unhashed", MetricKind.Counter,
            "block changes not recorded as KV events because the engine never learned their vLLM hash");
        Histograms = s_infos.Count;
        foreach (string dir in TransferFlows.Labels)
        {
            foreach (string le in LatencyBuckets.Le)
                s_infos.Add(new MetricInfo("transfer_seconds_bucket", MetricKind.Histogram, "", [new("direction", dir), new("le", le)]));
            s_infos.Add(new MetricInfo("transfer_seconds_sum", MetricKind.Histogram, "", [new("direction", dir)]));
            s_infos.Add(new MetricInfo("transfer_seconds_count", MetricKind.Histogram,
                "time of a transfer operation from its hand-off to its last block, by direction", [new("direction", dir)]));
        }
        StoredCount = s_infos.Count;

        string[] slotTiers = SlotTiers.Select(t => MetricTiers.Labels[(int)t]).ToArray();
        CapacityBlocks = Family("tier_capacity_blocks", MetricKind.Gauge, "slots of the tier", "tier", slotTiers);
        UsedBlocks = Family("tier_used_blocks", MetricKind.Gauge, "slots of the tier in use", "tier", slotTiers);
        CapacityBytes = Family("tier_capacity_bytes", MetricKind.Gauge, "bytes of KV the tier's slots hold", "tier", slotTiers);
        UsedBytes = Family("tier_used_bytes", MetricKind.Gauge, "bytes of KV in the tier's slots in use", "tier", slotTiers);
        Evictions = Family("tier_evictions", MetricKind.Counter, "blocks evicted from the tier", "tier", slotTiers);
        QueueDepth = Family("queue_depth", MetricKind.Gauge,
            "items waiting in a queue (copy: task slices; tier queues: blocks)", "queue", Queues);
        Infos = [.. s_infos];
    }

    /// <summary>Every entry, in snapshot order (after the stats entries).</summary>
    public static readonly MetricInfo[] Infos;

    public static int Count => Infos.Length;

    /// <summary>Raw position of <paramref name="flow"/>'s histogram.</summary>
    public static int Histogram(TransferFlow flow) => Histograms + (int)flow * HistogramStride;

    /// <summary>Raw position of the failures of <paramref name="flow"/> for <paramref name="why"/>.</summary>
    public static int Failure(TransferFlow flow, FailureReason why) => Failures + (int)flow * FailureReasons.Count + (int)why;

    /// <summary>Position of a slot tier's entry in a computed family (-1: the family has no such tier).</summary>
    public static int SlotTier(int family, MetricTier tier) => tier switch // SlotTiers' order; no search on the read path
    {
        MetricTier.Cpu => family,
        MetricTier.Ssd => family + 1,
        _ => -1,
    };

    /// <summary>Position of a lower tier's write or read queue in <c>queue_depth</c> (-1: none named).</summary>
    public static int TierQueue(MetricTier tier, bool reads) => tier switch // Queues' order
    {
        MetricTier.Ssd => QueueDepth + (reads ? 2 : 1),
        MetricTier.Remote => QueueDepth + (reads ? 4 : 3),
        _ => -1,
    };

    /// <summary>Position of the copy threads' queue in <c>queue_depth</c>.</summary>
    public static int CopyQueue => QueueDepth;

    private static int Family(string name, MetricKind kind, string help, string key, string[] values)
    {
        int first = s_infos.Count;
        foreach (string v in values) s_infos.Add(new MetricInfo(name, kind, help, [new(key, v)]));
        return first;
    }

    private static int Single(string name, MetricKind kind, string help)
    {
        s_infos.Add(new MetricInfo(name, kind, help));
        return s_infos.Count - 1;
    }
}
