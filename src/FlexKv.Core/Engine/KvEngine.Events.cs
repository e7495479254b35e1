using FlexKv.Core.Errors;
using FlexKv.Core.Events;

namespace FlexKv.Core.Engine;

internal sealed partial class KvEngine
{
    /// <summary>The most KV events the engine keeps for the taker.</summary>
    public const int MaxKvEventCapacity = 1 << 20;

    private KvEventRing? _kvEvents;

    /// <summary>
    /// Starts recording KV events (blocks stored in or removed from a tier, resets) into a ring of
    /// <paramref name="capacity"/> events; when nobody takes them in time the oldest are dropped.
    /// Calling again replaces the ring (events not taken are lost).
    /// </summary>
    public void EnableKvEvents(int capacity)
    {
        if (capacity < 1 || capacity > MaxKvEventCapacity)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"KV event capacity must be 1 to {MaxKvEventCapacity}, got {capacity}");
        lock (_sync)
        {
            ThrowIfShutDown();
            _kvEvents = new KvEventRing(capacity, _metrics);
            _index.EnableEvents(_kvEvents, _metrics);
        }
    }

    /// <summary>
    /// vLLM's hashes of a known request's blocks [<paramref name="firstBlock"/>, + count), each
    /// <paramref name="hashLength"/> bytes, back to back in <paramref name="hashes"/>: KV events
    /// name blocks by them. Hashes are given in order (first block at most the count given so
    /// far; a block given again is overwritten), all of one length.
    /// </summary>
    public void SetBlockHashes(ReadOnlySpan<char> requestId, int firstBlock, ReadOnlySpan<byte> hashes, int hashLength)
    {
        if (hashLength < 1 || hashLength > KvEvent.MaxHashBytes)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"a block hash is 1 to {KvEvent.MaxHashBytes} bytes, got {hashLength}");
        if (hashes.Length % hashLength != 0)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"{hashes.Length} bytes of hashes are not whole hashes of {hashLength} bytes");
        lock (_sync)
        {
            ThrowIfShutDown();
            if (_kvEvents is null) ThrowHelper.Throw(FlexKvStatus.InvalidState, "KV events are not enabled");
            RequestState? s = _requests.Find(requestId);
            if (s is null) ThrowHelper.UnknownRequest(requestId.ToString());
            if (firstBlock < 0 || firstBlock > s.HashCount)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                    $"request '{requestId}': hashes must continue from block {s.HashCount} or before, not {firstBlock}");
            if (s.HashCount > 0 && hashLength != s.HashLength)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"request '{requestId}': its hashes are {s.HashLength} bytes, not {hashLength}");
            int count = hashes.Length / hashLength;
            int end = firstBlock + count;
            if (s.Hashes.Length < end * KvEvent.MaxHashBytes)
                Array.Resize(ref s.Hashes, Math.Max(end, 2 * s.Hashes.Length / KvEvent.MaxHashBytes) * KvEvent.MaxHashBytes);
            for (int i = 0; i < count; i++)
                hashes.Slice(i * hashLength, hashLength).CopyTo(s.Hashes.AsSpan((firstBlock + i) * KvEvent.MaxHashBytes));
            s.HashLength = hashLength;
            s.HashCount = Math.Max(s.HashCount, end);
        }
    }

    /// <summary>Moves the oldest KV events, as many as fit, into <paramref name="dst"/>; returns how many (0 when events are off).</summary>
    public int TakeKvEvents(Span<KvEvent> dst)
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions(); // what the copy and tier threads finished is in the index now, and in the events
            return _kvEvents?.Take(dst) ?? 0;
        }
    }
}
