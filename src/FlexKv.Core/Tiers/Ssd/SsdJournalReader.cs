using System.Buffers.Binary;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>What replaying a journal found, besides the slot table.</summary>
internal readonly record struct SsdJournalReplay(string? DiscardReason, long TornRecords, long BeyondSizeBlocks, long Records);

/// <summary>
/// Replays a journal into a slot table, reading it as a stream in fixed chunks: no whole-file
/// buffer, so its length is not limited (a 2 GiB array limit once discarded whole caches).
/// Per slot it fills where its live record is (<c>at</c>: record number + 1, 0: empty), the
/// block's seal and, for the restore, its key and parent (<see cref="SsdJournalContents"/>).
/// </summary>
internal static class SsdJournalReader
{
    private const int ChunkRecords = 4096;

    public static SsdJournalReplay Replay(string path, UInt128 fingerprint, long blockBytes, int stripes, uint[] at, UInt128[] seals,
        SsdJournalContents contents)
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
            return new SsdJournalReplay($"the journal is unreadable: {e.Message}", 0, 0, 0);
        }
        using (f)
        {
            try
            {
                return Replay(f, fingerprint, blockBytes, stripes, at, seals, contents);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A prefix read before an I/O error is not trusted.
                Array.Clear(at);
                Array.Clear(contents.Kind);
                contents.Live = 0;
                return new SsdJournalReplay($"the journal is unreadable: {e.Message}", 0, 0, 0);
            }
        }
    }

    private static SsdJournalReplay Replay(FileStream f, UInt128 fingerprint, long blockBytes, int stripes, uint[] at, UInt128[] seals,
        SsdJournalContents contents)
    {
        const int R = SsdJournalFormat.RecordBytes;
        long length = f.Length;
        Span<byte> header = stackalloc byte[SsdJournalFormat.HeaderBytes];
        int got = f.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (SsdJournalFormat.HeaderMismatch(header[..got], fingerprint, blockBytes, stripes) is { } why)
            return new SsdJournalReplay(why, 0, 0, 0);
        var chunk = new byte[ChunkRecords * R];
        Dictionary<int, bool>? beyond = null; // slots past the current size: is there a block at the end?
        long pos = SsdJournalFormat.HeaderBytes, torn = 0, records = 0;
        int live = 0;
        while (pos < length)
        {
            int n = (int)Math.Min(chunk.Length, length - pos);
            f.ReadExactly(chunk, 0, n);
            int whole = n / R;
            int i = 0;
            for (; i < whole; i++, records++)
            {
                ReadOnlySpan<byte> r = chunk.AsSpan(i * R, R);
                if (!SsdJournalFormat.TryRead(r, out int slot, out byte kind)) break;
                if ((uint)slot < (uint)at.Length)
                {
                    if (at[slot] != 0) live--;
                    contents.Kind[slot] = kind;
                    if (kind == SsdJournalContents.Empty)
                    {
                        at[slot] = 0;
                        continue;
                    }
                    if (records >= uint.MaxValue - 1) throw new IOException("the journal holds more than 4 billion records");
                    at[slot] = (uint)(records + 1);
                    live++;
                    contents.Keys[slot] = SsdJournalFormat.KeyOf(r);
                    contents.Parents[slot] = SsdJournalFormat.ParentOf(r);
                    seals[slot] = SsdJournalFormat.SealOf(r);
                }
                else if (slot >= 0) (beyond ??= new())[slot] = kind != SsdJournalContents.Empty;
            }
            if (i < whole || n % R != 0)
            {
                // A torn tail: everything from here on (a partly written record included) is dropped.
                torn = (length - pos - (long)i * R + R - 1) / R;
                break;
            }
            pos += n;
        }
        contents.Live = live;
        return new SsdJournalReplay(null, torn, beyond?.Count(b => b.Value) ?? 0, records);
    }

    /// <summary>The slot a record names (the journal's records are checked when replayed).</summary>
    public static int SlotOf(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt32LittleEndian(record[4..]);
}
