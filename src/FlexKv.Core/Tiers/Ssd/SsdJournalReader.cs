namespace FlexKv.Core.Tiers.Ssd;

/// <summary>What replaying a journal found, besides the slot table.</summary>
internal readonly record struct SsdJournalReplay(string? DiscardReason, long TornRecords, long BeyondSizeBlocks);

/// <summary>
/// Replays a journal into a slot table, reading it as a stream in fixed chunks: no whole-file
/// buffer, so its length is not limited (a 2 GiB array limit once discarded whole caches).
/// </summary>
internal static class SsdJournalReader
{
    private const int ChunkRecords = 1024;

    public static SsdJournalReplay Replay(string path, UInt128 fingerprint, long blockBytes, int stripes, SsdRecord?[] slots)
    {
        FileStream f;
        try
        {
            f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return default; // a new cache
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new SsdJournalReplay($"the journal is unreadable: {e.Message}", 0, 0);
        }
        using (f)
        {
            try
            {
                return Replay(f, fingerprint, blockBytes, stripes, slots);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Array.Clear(slots); // a prefix read before an I/O error is not trusted
                return new SsdJournalReplay($"the journal is unreadable: {e.Message}", 0, 0);
            }
        }
    }

    private static SsdJournalReplay Replay(FileStream f, UInt128 fingerprint, long blockBytes, int stripes, SsdRecord?[] slots)
    {
        const int R = SsdJournalFormat.RecordBytes;
        long length = f.Length;
        Span<byte> header = stackalloc byte[SsdJournalFormat.HeaderBytes];
        int got = f.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (SsdJournalFormat.HeaderMismatch(header[..got], fingerprint, blockBytes, stripes) is { } why)
            return new SsdJournalReplay(why, 0, 0);
        var chunk = new byte[ChunkRecords * R];
        Dictionary<int, bool>? beyond = null; // slots past the current size: is there a block at the end?
        long pos = SsdJournalFormat.HeaderBytes, torn = 0;
        while (pos < length)
        {
            int n = (int)Math.Min(chunk.Length, length - pos);
            f.ReadExactly(chunk, 0, n);
            int whole = n / R;
            int i = 0;
            for (; i < whole; i++)
            {
                if (!SsdJournalFormat.TryRead(chunk.AsSpan(i * R, R), out int slot, out SsdRecord? rec)) break;
                if ((uint)slot < (uint)slots.Length) slots[slot] = rec;
                else if (slot >= 0) (beyond ??= new())[slot] = rec is not null;
            }
            if (i < whole || n % R != 0)
            {
                // A torn tail: everything from here on (a partly written record included) is dropped.
                torn = (length - pos - (long)i * R + R - 1) / R;
                break;
            }
            pos += n;
        }
        return new SsdJournalReplay(null, torn, beyond?.Count(b => b.Value) ?? 0);
    }
}
