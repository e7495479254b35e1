namespace FlexKv.Core.Metrics;

/// <summary>How a metric's value reads: a count since start (a Prometheus counter) or a level now (a gauge).</summary>
internal enum MetricKind
{
    /// <summary>Only grows; a reader takes differences between snapshots.</summary>
    Counter,

    /// <summary>A current level (blocks in use, queue depth, a 0/1 state).</summary>
    Gauge,
}
