using FlexKv.Core.Metrics;

namespace FlexKv.Core.Events;

/// <summary>
/// The KV events nobody took yet, oldest first, in a ring of fixed capacity allocated once: a
/// full ring drops its oldest event (counted as <c>kv_events_dropped</c>) rather than grow or
/// block the engine. Recorded and taken under the engine lock (the index records as blocks
/// change; the scheduler side takes them once a step).
/// </summary>
internal sealed class KvEventRing(int capacity, EngineMetrics metrics)
{
    private readonly KvEvent[] _events = new KvEvent[capacity];
    private int _head; // the oldest event
    private int _count;

    public int Capacity => _events.Length;

    public int Count => _count;

    /// <summary>The slot of a new event, to fill in place (no copy of 72 bytes through the stack).</summary>
    public ref KvEvent Add()
    {
        metrics.EventRecorded();
        if (_count == _events.Length)
        {
            _head = (_head + 1) % _events.Length;
            _count--;
            metrics.EventDropped();
        }
        ref KvEvent e = ref _events[(_head + _count) % _events.Length];
        _count++;
        e = default;
        return ref e;
    }

    /// <summary>Moves up to <c>dst.Length</c> oldest events into <paramref name="dst"/>; returns how many.</summary>
    public int Take(Span<KvEvent> dst)
    {
        int n = Math.Min(dst.Length, _count);
        for (int i = 0; i < n; i++) dst[i] = _events[(_head + i) % _events.Length];
        _head = (_head + n) % _events.Length;
        _count -= n;
        return n;
    }
}
