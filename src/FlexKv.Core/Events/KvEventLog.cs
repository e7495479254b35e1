using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Core.Metrics;

namespace FlexKv.Core.Events;

/// <summary>
/// The engine's KV events for vLLM's <c>take_events</c>: off until enabled; then the index
/// records each block stored in or removed from a tier, and each reset, into a bounded ring
/// (the oldest dropped and counted when nobody takes them), named by vLLM's hashes of the
/// blocks, which the connector hands over per request. Every call takes the engine lock.
/// </summary>
internal sealed class KvEventLog(object sync, BlockIndex index, RequestTable requests, EngineMetrics metrics,
    Action checkAlive, Action applyCompletions)
{
    /// <summary>The most KV events the engine keeps for the taker.</summary>
    public const int MaxCapacity = 1 << 20;

    private KvEventRing? _ring;

    /// <summary>
    /// Starts recording into a ring of <paramref name="capacity"/> events. Calling again replaces
    /// the ring (events not taken are lost).
    /// </summary>
    public void Enable(int capacity)
    {
        if (capacity < 1 || capacity > MaxCapacity)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"KV event capacity must be 1 to {MaxCapacity}, got {capacity}");
        lock (sync)
        {
            checkAlive();
            _ring = new KvEventRing(capacity, metrics);
            index.EnableEvents(_ring, metrics);
        }
    }

    /// <summary>
    /// vLLM's hashes of a known request's blocks [<paramref name="firstBlock"/>, + count), each
    /// <paramref name="hashLength"/> bytes, back to back in <paramref name="hashes"/> (see <see cref="RequestHashes"/>).
    /// </summary>
    public void SetBlockHashes(ReadOnlySpan<char> requestId, int firstBlock, ReadOnlySpan<byte> hashes, int hashLength)
    {
        RequestHashes.CheckShape(hashes.Length, hashLength);
        lock (sync)
        {
            checkAlive();
            if (_ring is null) ThrowHelper.Throw(FlexKvStatus.InvalidState, "KV events are not enabled");
            RequestState? s = requests.Find(requestId);
            if (s is null) ThrowHelper.UnknownRequest(requestId.ToString());
            RequestHashes.Set(s, requestId, firstBlock, hashes, hashLength);
        }
    }

    /// <summary>Moves the oldest events, as many as fit, into <paramref name="dst"/>; returns how many (0 when events are off).</summary>
    public int Take(Span<KvEvent> dst)
    {
        lock (sync)
        {
            checkAlive();
            applyCompletions(); // what the copy and tier threads finished is in the index now, and in the events
            return _ring?.Take(dst) ?? 0;
        }
    }
}
