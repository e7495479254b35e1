using System.Diagnostics;
using L = FlexKv.Core.Metrics.EngineMetricsLayout;

namespace FlexKv.Core.Metrics;

/// <summary>
/// The engine metrics model's counters and histograms: one int64 array in
/// <see cref="EngineMetricsLayout"/>'s stored order. Any thread records (the scheduler thread
/// under the engine lock, copy threads, tier threads), each with one or a few
/// <see cref="Interlocked"/> adds and no allocation; a reader copies the array without a lock
/// (64-bit reads are atomic), so a snapshot needs no consistency between entries.
/// Histograms keep per-bucket counts and are made cumulative at read.
/// </summary>
internal sealed class EngineMetrics
{
    private static readonly double s_microsPerTick = 1_000_000.0 / Stopwatch.Frequency;
    private readonly long[] _v = new long[L.StoredCount];

    /// <summary><paramref name="tokens"/> were offered from <paramref name="tier"/>.</summary>
    public void Matched(MetricTier tier, long tokens)
    {
        if (tier != MetricTier.None && tokens != 0) Interlocked.Add(ref _v[L.MatchedByTier + (int)tier], tokens);
    }

    /// <summary><paramref name="blocks"/> were not offered, for <paramref name="why"/>.</summary>
    public void NotOffered(NotOfferedReason why, long blocks)
    {
        if (blocks > 0) Interlocked.Add(ref _v[L.NotOffered + (int)why], blocks);
    }

    public void Lookup(LookupOutcome outcome) => Interlocked.Increment(ref _v[L.Lookups + (int)outcome]);

    /// <summary><paramref name="blocks"/> blocks of <paramref name="bytes"/> bytes in all moved in <paramref name="flow"/>.</summary>
    public void Moved(TransferFlow flow, long blocks, long bytes)
    {
        if (flow == TransferFlow.None || blocks == 0) return;
        Interlocked.Add(ref _v[L.Blocks + (int)flow], blocks);
        Interlocked.Add(ref _v[L.Bytes + (int)flow], bytes);
    }

    /// <summary><paramref name="blocks"/> blocks did not move in <paramref name="flow"/>, for <paramref name="why"/>.</summary>
    public void Failed(TransferFlow flow, FailureReason why, long blocks = 1)
    {
        if (flow == TransferFlow.None || why == FailureReason.None || blocks == 0) return;
        Interlocked.Add(ref _v[L.Failure(flow, why)], blocks);
    }

    /// <summary>An operation of <paramref name="flow"/> ended, <paramref name="elapsedTicks"/> (Stopwatch ticks) after its hand-off.</summary>
    public void Operation(TransferFlow flow, long elapsedTicks)
    {
        if (flow == TransferFlow.None) return;
        Interlocked.Increment(ref _v[L.Ops + (int)flow]);
        long micros = (long)(Math.Max(0, elapsedTicks) * s_microsPerTick);
        int h = L.Histogram(flow);
        Interlocked.Increment(ref _v[h + BucketSlot(LatencyBuckets.Of(micros))]);
        Interlocked.Add(ref _v[h + LatencyBuckets.Count], micros);
    }

    /// <summary>The ticks of now, for <see cref="Operation"/>'s elapsed time.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    public void Request(RequestEvent e) => Interlocked.Increment(ref _v[L.Requests + (int)e]);

    public void Reset() => Interlocked.Increment(ref _v[L.Resets]);

    public void EventRecorded() => Interlocked.Increment(ref _v[L.EventsRecorded]);

    public void EventDropped() => Interlocked.Increment(ref _v[L.EventsDropped]);

    public void EventUnhashed() => Interlocked.Increment(ref _v[L.EventsUnhashed]);

    // Raw slot of bucket b within a histogram: the finite buckets, then (after the sum) the overflow.
    private static int BucketSlot(int b) => b < LatencyBuckets.Count ? b : LatencyBuckets.Count + 1;

    /// <summary>
    /// Writes the stored entries (<see cref="EngineMetricsLayout.StoredCount"/> values) in snapshot
    /// form: counters as they are, each histogram's buckets cumulative and its count the total.
    /// </summary>
    public void CopyTo(Span<long> dst)
    {
        _v.AsSpan().CopyTo(dst);
        int n = LatencyBuckets.Count;
        for (int f = 0; f < TransferFlows.Count; f++)
        {
            Span<long> h = dst.Slice(L.Histogram((TransferFlow)f), L.HistogramStride);
            long total = 0;
            for (int b = 0; b < n; b++) h[b] = total += h[b];
            h[n + 1] += total; // the count: every observation, those above the last bound included
        }
    }
}
