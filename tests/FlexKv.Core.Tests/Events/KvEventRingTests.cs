using FlexKv.Core.Events;
using FlexKv.Core.Metrics;
using L = FlexKv.Core.Metrics.EngineMetricsLayout;

namespace FlexKv.Core.Tests.Events;

public class KvEventRingTests
{
    private static long Read(EngineMetrics m, int at)
    {
        var v = new long[L.StoredCount];
        m.CopyTo(v);
        return v[at];
    }

    [Fact]
    public void AFullRing_DropsItsOldestEvents_AndCountsThem()
    {
        var metrics = new EngineMetrics();
        var ring = new KvEventRing(4, metrics);
        for (int i = 0; i < 7; i++)
        {
            ref KvEvent e = ref ring.Add();
            e.Kind = KvEventKind.Stored;
            e.Medium = (byte)i; // which event it is
        }
        Assert.Equal(4, ring.Count);
        Assert.Equal(7, Read(metrics, L.EventsRecorded));
        Assert.Equal(3, Read(metrics, L.EventsDropped));
        var got = new KvEvent[3];
        Assert.Equal(3, ring.Take(got));
        Assert.Equal([3, 4, 5], got.Select(e => (int)e.Medium));
        Assert.Equal(1, ring.Take(got));
        Assert.Equal(6, got[0].Medium);
        Assert.Equal(0, ring.Take(got));
        ring.Add().Kind = KvEventKind.Cleared; // the ring goes on after it was emptied
        Assert.Equal(1, ring.Take(got));
        Assert.Equal(KvEventKind.Cleared, got[0].Kind);
        Assert.Equal(3, Read(metrics, L.EventsDropped));
    }
}
