namespace FlexKv.Core.Metrics;

/// <summary>How a metric's value reads: a count since start (a Prometheus counter), a level now (a gauge), or one part of a histogram.</summary>
internal enum MetricKind
{
    /// <summary>Only grows; a reader takes differences between snapshots.</summary>
    Counter,

    /// <summary>A current level (blocks in use, queue depth, a 0/1 state).</summary>
    Gauge,

    /// <summary>
    /// One entry of a histogram, spelled as Prometheus spells it (docs/metrics.md): <c>&lt;base&gt;_bucket</c>
    /// with an <c>le</c> label (cumulative), <c>&lt;base&gt;_sum</c> (µs for a base ending in <c>_seconds</c>) and
    /// <c>&lt;base&gt;_count</c>. Only grows.
    /// </summary>
    Histogram,
}
