using FlexKv.Core.Metrics;

namespace FlexKv.Core.Tests.Metrics;

public class MetricsLayoutTests
{
    private static IEnumerable<MetricInfo> All => Enumerable.Range(0, StatsMetrics.Count).Select(StatsMetrics.Info);

    private static string Key(MetricInfo m) =>
        m.Name + "{" + string.Join(',', m.LabelSpan.ToArray().OrderBy(l => l.Key).Select(l => $"{l.Key}={l.Value}")) + "}";

    [Fact]
    public void EveryEntry_IsOneNameAndLabelSet()
    {
        var keys = All.Select(Key).ToArray();
        Assert.Equal(keys.Length, keys.Distinct().Count());
    }

    [Fact]
    public void EveryEntryOfOneName_CarriesTheSameLabelKeysAndKind()
    {
        foreach (var g in All.GroupBy(m => m.Name))
        {
            Assert.Single(g.Select(m => string.Join(',', m.LabelSpan.ToArray().Select(l => l.Key).Order())).Distinct());
            Assert.Single(g.Select(m => m.Kind).Distinct());
        }
    }

    [Fact]
    public void Histograms_HaveEveryBucketASumAndACountPerDirection()
    {
        foreach (string dir in TransferFlows.Labels)
        {
            var parts = All.Where(m => m.Kind == MetricKind.Histogram && m.LabelSpan.ToArray().Contains(new MetricLabel("direction", dir))).ToArray();
            Assert.Equal(LatencyBuckets.Le, parts.Where(m => m.Name == "transfer_seconds_bucket")
                .Select(m => m.LabelSpan.ToArray().Single(l => l.Key == "le").Value));
            Assert.Single(parts, m => m.Name == "transfer_seconds_sum");
            Assert.Single(parts, m => m.Name == "transfer_seconds_count");
        }
        // The bounds and their le spellings agree (le is seconds, the bounds µs).
        for (int i = 0; i < LatencyBuckets.Count; i++)
            Assert.Equal(LatencyBuckets.BoundsMicros[i] / 1e6, double.Parse(LatencyBuckets.Le[i], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void TheModel_FollowsTheStatsEntries_WhichKeepTheirOrder()
    {
        Assert.Equal("match_calls", StatsMetrics.Info(0).Name);
        Assert.Equal("remote_breaker_open", StatsMetrics.Info(StatsMetrics.StatsCount - 1).Name);
        Assert.Equal(EngineMetricsLayout.Infos[0], StatsMetrics.Info(StatsMetrics.StatsCount));
        Assert.Equal(StatsMetrics.StatsCount + EngineMetricsLayout.Count, StatsMetrics.Count);
    }

    [Fact]
    public void ComputedPositions_NameTheirTierAndQueue()
    {
        string LabelAt(int at, string key) => EngineMetricsLayout.Infos[at].LabelSpan.ToArray().Single(l => l.Key == key).Value;
        foreach (int family in new[] { EngineMetricsLayout.CapacityBlocks, EngineMetricsLayout.UsedBlocks, EngineMetricsLayout.CapacityBytes,
                     EngineMetricsLayout.UsedBytes, EngineMetricsLayout.Evictions })
        {
            Assert.Equal("cpu", LabelAt(EngineMetricsLayout.SlotTier(family, MetricTier.Cpu), "tier"));
            Assert.Equal("ssd", LabelAt(EngineMetricsLayout.SlotTier(family, MetricTier.Ssd), "tier"));
            Assert.Equal(-1, EngineMetricsLayout.SlotTier(family, MetricTier.Remote));
        }
        Assert.Equal("copy", LabelAt(EngineMetricsLayout.CopyQueue, "queue"));
        Assert.Equal("ssd_write", LabelAt(EngineMetricsLayout.TierQueue(MetricTier.Ssd, reads: false), "queue"));
        Assert.Equal("ssd_read", LabelAt(EngineMetricsLayout.TierQueue(MetricTier.Ssd, reads: true), "queue"));
        Assert.Equal("remote_write", LabelAt(EngineMetricsLayout.TierQueue(MetricTier.Remote, reads: false), "queue"));
        Assert.Equal("remote_read", LabelAt(EngineMetricsLayout.TierQueue(MetricTier.Remote, reads: true), "queue"));
        Assert.Equal(-1, EngineMetricsLayout.TierQueue(MetricTier.None, reads: true));
    }
}
