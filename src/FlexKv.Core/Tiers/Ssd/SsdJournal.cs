using FlexKv.Core.Errors;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier's manifest (format in <see cref="SsdJournalFormat"/>): records "slot s now holds
/// block K" and "slot s is empty", appended after the block's bytes were written and before a
/// slot is overwritten, so after a crash or kill -9 it never names a block whose bytes were not
/// completely written. Opening replays it into a slot table (<see cref="SsdJournalReader"/>);
/// <see cref="Start"/>, once the engine is up (a failed create changes nothing), rewrites it as
/// that table. While running the writer thread keeps the table current and compacts the file
/// when it outgrows the live records (<see cref="CompactIfLarge"/>), so it stays bounded however
/// many blocks are written. Appends go straight to the kernel (one write(2) per batch), which
/// survives kill -9; compaction replaces the file atomically (<see cref="DurableFile"/>).
/// </summary>
internal sealed class SsdJournal : IDisposable
{
    /// <summary>Compaction waits until the file exceeds this much more than its live records.</summary>
    internal const long CompactFloorBytes = 1L << 20;
    // ... and until it is this many times the size of the live records: each compaction then
    // writes at most as many bytes as were appended since the last one.
    private const int CompactFactor = 2;
    private const int R = SsdJournalFormat.RecordBytes;

    private readonly string _path;
    private readonly UInt128 _fingerprint;
    private readonly long _blockBytes;
    private readonly int _stripes;
    private SafeFileHandle? _file;
    private long _end;
    private byte[] _buffer = new byte[R * 64];
    private int _buffered;
    private long _live;
    private long _retryAt; // after a failed compaction: the length to try again at

    /// <summary>
    /// Reads the journal at <paramref name="path"/> (nothing is written until <see cref="Start"/>);
    /// a different fingerprint, block size or stripe count starts it empty. Slots beyond
    /// <paramref name="numSlots"/> (a smaller ssd_cache_gb than last time) are dropped.
    /// </summary>
    public SsdJournal(string path, UInt128 fingerprint, long blockBytes, int stripes, int numSlots)
    {
        _path = path;
        _fingerprint = fingerprint;
        _blockBytes = blockBytes;
        _stripes = stripes;
        Slots = new SsdRecord?[numSlots];
        SsdJournalReplay replay = SsdJournalReader.Replay(path, fingerprint, blockBytes, stripes, Slots);
        DiscardReason = replay.DiscardReason;
        DroppedRecords = replay.TornRecords;
        BeyondSizeBlocks = replay.BeyondSizeBlocks;
    }

    /// <summary>The block each slot holds (null = empty): after replay, then as records are appended.</summary>
    public SsdRecord?[] Slots { get; }

    /// <summary>Why the previous content was discarded, or null when it was reused.</summary>
    public string? DiscardReason { get; }

    /// <summary>Records dropped at open because they were torn (a crash or kill during a write).</summary>
    public long DroppedRecords { get; }

    /// <summary>Blocks dropped at open because their slot is beyond the current size (ssd_cache_gb shrank).</summary>
    public long BeyondSizeBlocks { get; }

    /// <summary>Bytes in the journal file, queued records included.</summary>
    public long Length => _end + _buffered;

    /// <summary>Compactions done while running.</summary>
    public long Compactions { get; private set; }

    /// <summary>Before <see cref="Start"/>: the slot table becomes exactly <paramref name="live"/> (the blocks restored).</summary>
    public void Keep(IEnumerable<SsdRecord> live)
    {
        Array.Clear(Slots);
        foreach (SsdRecord r in live) Slots[r.Slot] = r;
    }

    /// <summary>Writes the journal as the slot table holds it and opens it for appending.</summary>
    public void Start()
    {
        if (_file is not null) throw new InvalidOperationException("the SSD journal is started already");
        _live = Slots.Count(s => s is not null);
        _file = Rewrite();
    }

    /// <summary>Queues "slot holds block" (written by <see cref="Flush"/>).</summary>
    public void AppendPut(in SsdRecord r)
    {
        SsdJournalFormat.WritePut(Reserve(), r);
        if (Slots[r.Slot] is null) _live++;
        Slots[r.Slot] = r;
    }

    /// <summary>Queues "slot is empty" (written by <see cref="Flush"/>).</summary>
    public void AppendRemove(int slot)
    {
        SsdJournalFormat.WriteRemove(Reserve(), slot);
        if (Slots[slot] is not null) _live--;
        Slots[slot] = null;
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
    /// <see cref="CompactFloorBytes"/> (writer thread, between batches). Returns whether it did;
    /// throws (IoError) when it could not, and then waits for the file to double before trying
    /// again, appending to the old file meanwhile.
    /// </summary>
    public bool CompactIfLarge()
    {
        long live = SsdJournalFormat.HeaderBytes + _live * R;
        if (Length <= CompactFactor * live + CompactFloorBytes || Length < _retryAt) return false;
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

    /// <summary>Replaces the journal by the live records; with <paramref name="live"/> the table becomes those first (reset: none).</summary>
    public void Compact(IEnumerable<SsdRecord>? live = null)
    {
        Flush();
        if (live is not null)
        {
            Keep(live);
            _live = Slots.Count(s => s is not null);
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
        return r;
    }

    // The old file stays open (and in use) until the new one is in place.
    private SafeFileHandle Rewrite()
    {
        try
        {
            SafeFileHandle h = DurableFile.Replace(_path, WriteTable, out long length);
            _end = length;
            return h;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.IoError, $"cannot write the SSD journal '{_path}': {e.Message}", e);
        }
    }

    private long WriteTable(SafeFileHandle f)
    {
        const int chunkRecords = 1024;
        var chunk = new byte[R * chunkRecords];
        SsdJournalFormat.WriteHeader(chunk, _fingerprint, _blockBytes, _stripes);
        RandomAccess.Write(f, chunk.AsSpan(0, SsdJournalFormat.HeaderBytes), 0);
        long at = SsdJournalFormat.HeaderBytes;
        int n = 0;
        foreach (SsdRecord? s in Slots)
        {
            if (s is not { } rec) continue;
            SsdJournalFormat.WritePut(chunk.AsSpan(n * R), rec);
            if (++n < chunkRecords) continue;
            RandomAccess.Write(f, chunk, at);
            at += chunk.Length;
            n = 0;
        }
        RandomAccess.Write(f, chunk.AsSpan(0, n * R), at);
        return at + n * R;
    }

    /// <summary>Writes what is queued and closes the file.</summary>
    public void Dispose()
    {
        try { if (_file is not null) Flush(); } catch (IOException) { }
        _file?.Dispose();
    }
}
