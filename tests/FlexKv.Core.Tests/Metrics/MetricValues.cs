using FlexKv.Core.Engine;
using FlexKv.Core.Metrics;

namespace FlexKv.Core.Tests.Metrics;

/// <summary>One metrics snapshot of an engine, looked up by name and labels as a scrape would.</summary>
internal sealed class MetricValues
{
    private readonly long[] _values = new long[StatsMetrics.Count];

    public MetricValues(KvEngine engine) => Assert.Equal(StatsMetrics.Count, engine.ReadMetrics(_values));

    /// <summary>
    /// Waits until <paramref name="done"/> holds for a snapshot; each try first lets the engine
    /// apply what its threads finished (a tier's completions reach the counters then).
    /// </summary>
    public static MetricValues WaitUntil(KvEngine engine, Func<MetricValues, bool> done, int timeoutMs = 10_000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            engine.Stats();
            var m = new MetricValues(engine);
            if (done(m)) return m;
            if (sw.ElapsedMilliseconds > timeoutMs) Assert.Fail("the metrics did not reach the expected values in time");
            Thread.Sleep(2);
        }
    }

    /// <summary>The value of the entry named <paramref name="name"/> with exactly <paramref name="labels"/> ("key=value").</summary>
    public long this[string name, params string[] labels]
    {
        get
        {
            var want = labels.Select(l => l.Split('=', 2)).Select(p => new MetricLabel(p[0], p[1])).OrderBy(l => l.Key).ToArray();
            for (int i = 0; i < StatsMetrics.Count; i++)
            {
                MetricInfo m = StatsMetrics.Info(i);
                if (m.Name == name && m.LabelSpan.ToArray().OrderBy(l => l.Key).SequenceEqual(want)) return _values[i];
            }
            throw new KeyNotFoundException($"no entry {name}{{{string.Join(',', labels)}}}");
        }
    }

    /// <summary>The sum over every entry of <paramref name="name"/> whose labels include <paramref name="labels"/>.</summary>
    public long Sum(string name, params string[] labels)
    {
        var want = labels.Select(l => l.Split('=', 2)).Select(p => new MetricLabel(p[0], p[1])).ToArray();
        long sum = 0;
        for (int i = 0; i < StatsMetrics.Count; i++)
        {
            MetricInfo m = StatsMetrics.Info(i);
            if (m.Name == name && want.All(w => m.LabelSpan.ToArray().Contains(w))) sum += _values[i];
        }
        return sum;
    }

    /// <summary>Every non-zero entry of <paramref name="name"/>, as "k=v,k=v" label text → value.</summary>
    public Dictionary<string, long> NonZero(string name)
    {
        var d = new Dictionary<string, long>();
        for (int i = 0; i < StatsMetrics.Count; i++)
        {
            MetricInfo m = StatsMetrics.Info(i);
            if (m.Name == name && _values[i] != 0)
                d[string.Join(',', m.LabelSpan.ToArray().Select(l => $"{l.Key}={l.Value}"))] = _values[i];
        }
        return d;
    }
}
