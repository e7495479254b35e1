using FlexKv.Core.Errors;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier's manifest (format in <see cref="SsdJournalFormat"/>): records "slot s now holds
/// block K" and "slot s is empty", appended after the block's bytes were written and before a
/// slot is overwritten, so after a crash or kill -9 it never names a block whose bytes were not
/// completely written. Opening replays it (<see cref="SsdJournalReader"/>): what each slot holds
/// goes to the restore once (<see cref="Contents"/>), and all that stays in memory is where each
/// slot's live record is in the file (4 bytes a slot). <see cref="Start"/>, once the engine is
/// up (a failed create changes nothing), rewrites the file when it holds anything but the live
/// records (a torn tail, removed or overwritten blocks, blocks the restore dropped) and else
/// appends to it as it is, so reopening a large clean cache writes nothing. While running the
/// writer keeps the positions current and compacts the file when it outgrows the live records
/// (<see cref="CompactIfLarge"/>), so it stays bounded however many blocks are written. A
/// compaction copies the live records from the old file, which stays the journal (and is
/// appended to) until the copy replaced it atomically (<see cref="DurableFile"/>). Appends go
/// straight to the kernel (one write(2) per batch), which survives kill -9.
/// </summary>
internal sealed class SsdJournal : IDisposable
{
    /// <summary>Compaction waits until the file exceeds this much more than its live records.</summary>
    internal const long CompactFloorBytes = 1L << 20;
    // ... and until it is this many times the size of the live records: each compaction then
    // writes at most as many bytes as were appended since the last one.
    private const int CompactFactor = 2;
    private const int R = SsdJournalFormat.RecordBytes;
    private const int ChunkRecords = 4096;

    private readonly string _path;
    private readonly UInt128 _fingerprint;
    private readonly long _blockBytes;
    private readonly int _stripes;
    private uint[] _at;   // per slot: number + 1 of the record that put its block, in the current file; 0: empty
    private long _records; // records in the file, queued ones included
    private int _live;
    private bool _rewrite; // at Start: the file holds more than the live records
    private SafeFileHandle? _file;
    private long _end;
    private byte[] _buffer = new byte[R * 64];
    private int _buffered;
    private long _retryAt; // after a failed compaction: the length to try again at

    /// <summary>
    /// Reads the journal at <paramref name="path"/> (nothing is written until <see cref="Start"/>);
    /// a different fingerprint, block size or stripe count starts it empty. Slots beyond
    /// <paramref name="numSlots"/> (a smaller ssd_cache_gb than last time) are dropped. The seal
    /// of each block goes to <paramref name="seals"/> (one per slot).
    /// </summary>
    public SsdJournal(string path, UInt128 fingerprint, long blockBytes, int stripes, int numSlots, UInt128[] seals)
    {
        _path = path;
        _fingerprint = fingerprint;
        _blockBytes = blockBytes;
        _stripes = stripes;
        _at = new uint[numSlots];
        Contents = new SsdJournalContents(numSlots);
        SsdJournalReplay replay = SsdJournalReader.Replay(path, fingerprint, blockBytes, stripes, _at, seals, Contents);
        DiscardReason = replay.DiscardReason;
        DroppedRecords = replay.TornRecords;
        BeyondSizeBlocks = replay.BeyondSizeBlocks;
        _live = Contents.Live;
        _records = replay.Records;
        _rewrite = !File.Exists(path) || DiscardReason is not null || DroppedRecords > 0 || _records != _live;
    }

    /// <summary>What each slot held at open, for the restore; null once <see cref="Start"/> ran.</summary>
    public SsdJournalContents? Contents { get; private set; }

    /// <summary>Why the previous content was discarded, or null when it was reused.</summary>
    public string? DiscardReason { get; }

    /// <summary>Records dropped at open because they were torn (a crash or kill during a write).</summary>
    public long DroppedRecords { get; }

    /// <summary>Blocks dropped at open because their slot is beyond the current size (ssd_cache_gb shrank).</summary>
    public long BeyondSizeBlocks { get; }

    /// <summary>Bytes in the journal file, queued records included.</summary>
    public long Length => SsdJournalFormat.HeaderBytes + _records * R;

    /// <summary>Slots that hold a block.</summary>
    public int Live => _live;

    /// <summary>Compactions done while running.</summary>
    public long Compactions { get; private set; }

    /// <summary>Whether slot <paramref name="slot"/> holds a block (as journaled, queued records included).</summary>
    public bool Holds(int slot) => _at[slot] != 0;

    /// <summary>Before <see cref="Start"/>: the block in <paramref name="slot"/> is not kept (the restore dropped it).</summary>
    public void Drop(int slot)
    {
        if (_at[slot] == 0) return;
        _at[slot] = 0;
        _live--;
        _rewrite = true;
    }

    /// <summary>
    /// Opens the journal for appending: as it is when it holds exactly the live records, else
    /// rewritten as them. A copy left by a compaction a kill interrupted goes.
    /// </summary>
    public void Start()
    {
        if (_file is not null) throw new InvalidOperationException("the SSD journal is started already");
        Contents = null; // the restore has what it needs
        try
        {
            File.Delete(_path + ".tmp");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The next replace overwrites it anyway.
        }
        if (_rewrite)
        {
            _file = Rewrite();
            return;
        }
        _file = OpenForAppend();
        _end = Length;
    }

    private SafeFileHandle OpenForAppend()
    {
        try
        {
            return File.OpenHandle(_path, FileMode.Open, FileAccess.Write, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.IoError, $"cannot open the SSD journal '{_path}': {e.Message}", e);
        }
    }

    /// <summary>Queues "slot holds block" (written by <see cref="Flush"/>).</summary>
    public void AppendPut(in SsdRecord r)
    {
        SsdJournalFormat.WritePut(Reserve(), r);
        if (_at[r.Slot] == 0) _live++;
        _at[r.Slot] = (uint)_records; // Reserve counted it: its number + 1
    }

    /// <summary>Queues "slot is empty" (written by <see cref="Flush"/>).</summary>
    public void AppendRemove(int slot)
    {
        SsdJournalFormat.WriteRemove(Reserve(), slot);
        if (_at[slot] != 0) _live--;
        _at[slot] = 0;
    }

    /// <summary>Writes queued records to the file in one call.</summary>
    public void Flush()
    {
        if (_buffered == 0) return;
        if (_file is null) throw new InvalidOperationException("the SSD journal is not started");
        RandomAccess.Write(_file, _buffer.AsSpan(0, _buffered), _end);
        _end += _buffered;
        _buffered = 0;
    }

    /// <summary>
    /// Compacts when the file is over <see cref="CompactFactor"/> times its live records plus
    /// <see cref="CompactFloorBytes"/>, or when record numbers near their 32-bit limit (writer
    /// side, between batches). Returns whether it did; throws (IoError) when it could not, and
    /// then waits for the file to double before trying again, appending to the old file meanwhile.
    /// </summary>
    public bool CompactIfLarge()
    {
        long live = SsdJournalFormat.HeaderBytes + (long)_live * R;
        bool numbersRunOut = _records > uint.MaxValue / 2;
        if (!numbersRunOut && (Length <= CompactFactor * live + CompactFloorBytes || Length < _retryAt)) return false;
        try
        {
            Compact();
        }
        catch
        {
            _retryAt = 2 * Length;
            throw;
        }
        Compactions++;
        return true;
    }

    /// <summary>Replaces the journal by its live records; with <paramref name="empty"/> every block is forgotten first (reset).</summary>
    public void Compact(bool empty = false)
    {
        Flush();
        if (empty)
        {
            Array.Clear(_at);
            _live = 0;
        }
        SafeFileHandle next = Rewrite();
        _file?.Dispose();
        _file = next;
        _retryAt = 0;
    }

    private Span<byte> Reserve()
    {
        if (_buffered + R > _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
        Span<byte> r = _buffer.AsSpan(_buffered, R);
        _buffered += R;
        _records++;
        return r;
    }

    // The old file stays open (and in use) until the new one is in place; the positions change
    // only once it is.
    private SafeFileHandle Rewrite()
    {
        uint[] next = new uint[_at.Length];
        try
        {
            SafeFileHandle h = DurableFile.Replace(_path, f => CopyLive(f, next), out long length);
            _end = length;
            _records = (length - SsdJournalFormat.HeaderBytes) / R;
            _at = next;
            return h;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.IoError, $"cannot write the SSD journal '{_path}': {e.Message}", e);
        }
    }

    // Streams the current file (its first _records records) and copies each slot's live record.
    private long CopyLive(SafeFileHandle f, uint[] next)
    {
        var chunk = new byte[R * ChunkRecords];
        SsdJournalFormat.WriteHeader(chunk, _fingerprint, _blockBytes, _stripes);
        RandomAccess.Write(f, chunk.AsSpan(0, SsdJournalFormat.HeaderBytes), 0);
        long at = SsdJournalFormat.HeaderBytes;
        if (_live == 0) return at;
        var out_ = new byte[R * ChunkRecords];
        int n = 0;
        uint written = 0;
        using SafeFileHandle old = File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        for (long first = 0; first < _records; first += ChunkRecords)
        {
            int count = (int)Math.Min(ChunkRecords, _records - first);
            int got = RandomAccess.Read(old, chunk.AsSpan(0, count * R), SsdJournalFormat.HeaderBytes + first * R);
            if (got != count * R) throw new IOException($"the journal ended at record {first + got / R} of {_records}");
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<byte> r = chunk.AsSpan(i * R, R);
                int slot = SsdJournalReader.SlotOf(r);
                if ((uint)slot >= (uint)_at.Length || _at[slot] != first + i + 1 || !SsdJournalFormat.IsPut(r)) continue;
                r.CopyTo(out_.AsSpan(n * R));
                next[slot] = ++written;
                if (++n < ChunkRecords) continue;
                RandomAccess.Write(f, out_, at);
                at += out_.Length;
                n = 0;
            }
        }
        RandomAccess.Write(f, out_.AsSpan(0, n * R), at);
        if (written != _live) throw new IOException($"the journal holds {written} of its {_live} live records");
        return at + n * R;
    }

    /// <summary>Writes what is queued and closes the file.</summary>
    public void Dispose()
    {
        try { if (_file is not null) Flush(); } catch (IOException) { }
        _file?.Dispose();
    }
}
