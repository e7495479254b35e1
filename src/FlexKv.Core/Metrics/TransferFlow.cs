namespace FlexKv.Core.Metrics;

/// <summary>
/// A direction bytes move in (label <c>direction</c>): between vLLM's KV cache ("device") and the
/// CPU tier ("host"), and between the CPU tier and each lower tier.
/// </summary>
internal enum TransferFlow
{
    /// <summary>Not counted (a tier the metrics do not name).</summary>
    None = -1,
    /// <summary>vLLM's KV cache → CPU slots: a save.</summary>
    D2H = 0,
    /// <summary>CPU slots → vLLM's KV cache: a load.</summary>
    H2D = 1,
    /// <summary>CPU → SSD (write-through).</summary>
    H2Ssd = 2,
    /// <summary>SSD → CPU (a load's staged read).</summary>
    Ssd2H = 3,
    /// <summary>CPU → the remote store (write-through).</summary>
    H2Remote = 4,
    /// <summary>The remote store → CPU (a load's staged read).</summary>
    Remote2H = 5,
}

internal static class TransferFlows
{
    public const int Count = 6;

    /// <summary>Label values, by <see cref="TransferFlow"/>.</summary>
    public static readonly string[] Labels = ["d2h", "h2d", "h2ssd", "ssd2h", "h2remote", "remote2h"];

    /// <summary>Writes from the CPU tier to <paramref name="tier"/>.</summary>
    public static TransferFlow WriteTo(MetricTier tier) => tier switch
    {
        MetricTier.Ssd => TransferFlow.H2Ssd,
        MetricTier.Remote => TransferFlow.H2Remote,
        _ => TransferFlow.None,
    };

    /// <summary>Reads from <paramref name="tier"/> into the CPU tier.</summary>
    public static TransferFlow ReadFrom(MetricTier tier) => tier switch
    {
        MetricTier.Ssd => TransferFlow.Ssd2H,
        MetricTier.Remote => TransferFlow.Remote2H,
        _ => TransferFlow.None,
    };
}
