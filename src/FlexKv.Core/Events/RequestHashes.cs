using FlexKv.Core.Engine;
using FlexKv.Core.Errors;

namespace FlexKv.Core.Events;

/// <summary>
/// vLLM's hashes of a request's blocks, kept with the request so KV events can name its blocks
/// as vLLM's own events do. Hashes come in order (a block given again is overwritten), all of
/// one length. Called under the engine lock.
/// </summary>
internal static class RequestHashes
{
    /// <summary>A buffer of whole hashes of a length events can carry.</summary>
    public static void CheckShape(int bytes, int hashLength)
    {
        if (hashLength < 1 || hashLength > KvEvent.MaxHashBytes)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"a block hash is 1 to {KvEvent.MaxHashBytes} bytes, got {hashLength}");
        if (bytes % hashLength != 0)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"{bytes} bytes of hashes are not whole hashes of {hashLength} bytes");
    }

    /// <summary>Stores the hashes of blocks [<paramref name="firstBlock"/>, + count) of <paramref name="s"/>.</summary>
    public static void Set(RequestState s, ReadOnlySpan<char> requestId, int firstBlock, ReadOnlySpan<byte> hashes, int hashLength)
    {
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
