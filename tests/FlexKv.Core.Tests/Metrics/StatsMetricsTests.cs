using FlexKv.Core.Engine;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tests.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Metrics;

public class StatsMetricsTests
{
    [Fact]
    public void Names_AreUniqueStatsKeys()
    {
        var names = Enumerable.Range(0, StatsMetrics.StatsCount).Select(i => StatsMetrics.Info(i).Name).ToArray();
        Assert.Equal(names.Length, names.Distinct().Count());
        Assert.Contains("matched_tokens", names);
        Assert.Equal(MetricKind.Counter, StatsMetrics.Info(Array.IndexOf(names, "blocks_saved")).Kind);
        Assert.Equal(MetricKind.Gauge, StatsMetrics.Info(Array.IndexOf(names, "cpu_blocks_used")).Kind);
    }

    [Fact]
    public void ReadMetrics_AgreesWithTheStatsAfterASaveAndALoad()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 1);
        h.Save("A", tokens, Blocks(0, 5));
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0));
        h.Load("B", Blocks(10, 5), 16);

        var values = new long[StatsMetrics.Count];
        Assert.Equal(StatsMetrics.Count, h.Engine.ReadMetrics(values));
        EngineStats s = h.Engine.Stats();
        long Get(string name) => values[Enumerable.Range(0, StatsMetrics.Count).First(i => StatsMetrics.Info(i).Name == name)];
        Assert.Equal(s.BlocksSaved, Get("blocks_saved"));
        Assert.Equal(s.BlocksLoaded, Get("blocks_loaded"));
        Assert.Equal(s.MatchedTokens, Get("matched_tokens"));
        Assert.Equal(s.BytesMoved, Get("bytes_moved"));
        Assert.Equal(s.CpuBlocksUsed, Get("cpu_blocks_used"));
        Assert.Equal(1, Get("registered"));
    }

    [Fact]
    public void TheStraightFill_WritesWhatTheTableSays()
    {
        var stats = new EngineStats();
        int n = 1;
        foreach (var p in typeof(EngineStats).GetProperties())
        {
            if (p.PropertyType == typeof(long)) p.SetValue(stats, (long)(n++ * 1000 + 7));
            else if (p.PropertyType == typeof(double)) p.SetValue(stats, n++ * 1.5);
            else if (p.PropertyType == typeof(bool)) p.SetValue(stats, n++ % 2 == 0);
        }
        var fast = new long[StatsMetrics.StatsCount];
        var table = new long[StatsMetrics.StatsCount];
        StatsMetrics.FillStats(stats, fast);
        StatsMetrics.FillStatsByTable(stats, table);
        Assert.Equal(table, fast); // every property a distinct value: a swapped or missed entry differs
    }

    [Fact]
    public void ReadMetrics_WritesOnlyWhatFitsAndSaysHowManyThereAre()
    {
        using var h = new EngineHarness();
        var few = new long[3];
        Assert.Equal(StatsMetrics.Count, h.Engine.ReadMetrics(few));
        Assert.Equal(StatsMetrics.Count, h.Engine.ReadMetrics(Span<long>.Empty));
    }
}
