namespace FlexKv.Core.Metrics;

/// <summary>
/// The fixed buckets of the transfer latency histograms (<c>transfer_seconds</c>): 100 µs to 5 s,
/// about three per decade, wide enough for a 4 KiB copy and a slow remote store alike.
/// </summary>
internal static class LatencyBuckets
{
    /// <summary>Upper bounds in µs.</summary>
    public static readonly long[] BoundsMicros =
        [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000];

    /// <summary>The same bounds as Prometheus's <c>le</c> label values (seconds).</summary>
    public static readonly string[] Le =
        ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5"];

    public static int Count => BoundsMicros.Length;

    /// <summary>The first bucket whose bound is at least <paramref name="micros"/>; <see cref="Count"/> past the last.</summary>
    public static int Of(long micros)
    {
        long[] b = BoundsMicros;
        int i = 0;
        while (i < b.Length && micros > b[i]) i++;
        return i;
    }
}
