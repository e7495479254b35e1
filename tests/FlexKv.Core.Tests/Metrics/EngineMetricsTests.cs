using System.Diagnostics;
using FlexKv.Core.Metrics;
using L = FlexKv.Core.Metrics.EngineMetricsLayout;

namespace FlexKv.Core.Tests.Metrics;

public class EngineMetricsTests
{
    private static long Ticks(long micros) => micros * Stopwatch.Frequency / 1_000_000;

    private static long[] Read(EngineMetrics m)
    {
        var v = new long[L.StoredCount];
        m.CopyTo(v);
        return v;
    }

    [Fact]
    public void Histogram_BucketsAreCumulative_TheCountHoldsEveryObservation_TheSumIsMicros()
    {
        var m = new EngineMetrics();
        m.Operation(TransferFlow.H2D, Ticks(50));         // <= 100 µs
        m.Operation(TransferFlow.H2D, Ticks(100));        // <= 100 µs (a bound is inclusive)
        m.Operation(TransferFlow.H2D, Ticks(3_000));      // <= 5 ms
        m.Operation(TransferFlow.H2D, Ticks(60_000_000)); // above 5 s
        long[] v = Read(m);
        int h = L.Histogram(TransferFlow.H2D);
        Assert.Equal(2, v[h + 0]);                        // le=0.0001
        Assert.Equal(2, v[h + 4]);                        // le=0.0025
        Assert.Equal(3, v[h + 5]);                        // le=0.005
        Assert.Equal(3, v[h + LatencyBuckets.Count - 1]); // le=5
        Assert.Equal(4, v[h + LatencyBuckets.Count + 1]); // _count
        Assert.InRange(v[h + LatencyBuckets.Count], 60_003_149, 60_003_151); // _sum, µs
        Assert.Equal(4, v[L.Ops + (int)TransferFlow.H2D]);
        Assert.Equal(0, v[L.Histogram(TransferFlow.D2H) + LatencyBuckets.Count + 1]); // other directions untouched
    }

    [Fact]
    public void Counters_LandOnTheirLabels_AndUncountedTiersAreIgnored()
    {
        var m = new EngineMetrics();
        m.Moved(TransferFlow.Ssd2H, 3, 3 * 4096);
        m.Failed(TransferFlow.Ssd2H, FailureReason.Checksum);
        m.Failed(TransferFlow.None, FailureReason.Checksum);
        m.Moved(TransferFlow.None, 7, 7);
        m.Matched(MetricTier.Remote, 32);
        m.Matched(MetricTier.None, 16);
        m.NotOffered(NotOfferedReason.PinnedLimit, 5);
        long[] v = Read(m);
        Assert.Equal(3, v[L.Blocks + (int)TransferFlow.Ssd2H]);
        Assert.Equal(3 * 4096, v[L.Bytes + (int)TransferFlow.Ssd2H]);
        Assert.Equal(1, v[L.Failure(TransferFlow.Ssd2H, FailureReason.Checksum)]);
        Assert.Equal(32, v[L.MatchedByTier + (int)MetricTier.Remote]);
        Assert.Equal(5, v[L.NotOffered + (int)NotOfferedReason.PinnedLimit]);
        Assert.Equal(3 + 3 * 4096 + 1 + 32 + 5, v.Sum()); // nothing else moved
    }

    [Fact]
    public void ConcurrentRecorders_LoseNothing()
    {
        var m = new EngineMetrics();
        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                m.Moved(TransferFlow.D2H, 1, 10);
                m.Operation(TransferFlow.D2H, Ticks(200));
            }
        });
        long[] v = Read(m);
        Assert.Equal(80_000, v[L.Blocks + (int)TransferFlow.D2H]);
        Assert.Equal(800_000, v[L.Bytes + (int)TransferFlow.D2H]);
        Assert.Equal(80_000, v[L.Histogram(TransferFlow.D2H) + LatencyBuckets.Count + 1]);
        Assert.Equal(80_000, v[L.Histogram(TransferFlow.D2H) + 1]); // le=0.00025
        Assert.Equal(0, v[L.Histogram(TransferFlow.D2H) + 0]);
    }
}
