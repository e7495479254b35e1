namespace FlexKv.Core.Metrics;

/// <summary>
/// The tiers per-tier metrics and KV events name (label <c>tier</c>, vLLM's event <c>medium</c>).
/// A lower tier is one of them by its <see cref="Tiers.ILowerTier.Name"/>; a tier whose name is
/// not listed (a test tier) is counted in totals only. A new tier adds itself here.
/// </summary>
internal enum MetricTier
{
    /// <summary>Not a tier the metrics name.</summary>
    None = -1,
    Cpu = 0,
    Ssd = 1,
    Remote = 2,
}

internal static class MetricTiers
{
    /// <summary>Number of named tiers.</summary>
    public const int Count = 3;

    /// <summary>Label values, by <see cref="MetricTier"/>.</summary>
    public static readonly string[] Labels = ["cpu", "ssd", "remote"];

    /// <summary>The metrics' name of lower tier <paramref name="tierName"/>.</summary>
    public static MetricTier FromName(string tierName) => tierName switch
    {
        "ssd" => MetricTier.Ssd,
        "remote" => MetricTier.Remote,
        _ => MetricTier.None,
    };
}
