namespace FlexKv.Core.Metrics;

/// <summary>One entry of the metrics snapshot: its name (a stats key), kind and one-line meaning.</summary>
internal readonly record struct MetricInfo(string Name, MetricKind Kind, string Help);
