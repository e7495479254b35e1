using System.Buffers.Binary;
using System.IO.Hashing;
using FlexKv.Core.Errors;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier's manifest: a header (magic, cache fingerprint, block geometry) followed by
/// fixed-size records "slot s now holds block K (parent P, checksum C)" and "slot s is empty".
/// A record is appended only after its block's bytes were written, and a slot is emptied in the
/// journal before it is overwritten, so after a crash or kill -9 the journal never names a block
/// whose bytes were not completely written; every record carries its own hash, so a torn tail
/// is cut off at open. Opening replays the records into a slot table; <see cref="Start"/> (once
/// the engine is up, so a failed create changes nothing) rewrites the journal compactly. The
/// header holds the stripe count, not the size: slot s stays in file s % n at the same offset
/// whatever ssd_cache_gb is, so a start with another size keeps the slots that still exist.
/// Writes go straight to the kernel (one write(2) per batch), which survives kill -9.
/// </summary>
public sealed class SsdJournal : IDisposable
{
    private const ulong Magic = 0x324A_564B_5845_4C46; // "FLEXKVJ2"
    private const ulong OlderMagic = 0x314A_564B_5845_4C46; // "FLEXKVJ1": its header held the slot count
    private const int HeaderBytes = 64;
    internal const int RecordBytes = 64;
    private const uint PutRecord = 1, PutRootRecord = 2, RemoveRecord = 3;

    private readonly string _path;
    private readonly UInt128 _fingerprint;
    private readonly long _blockBytes;
    private readonly int _numSlots;
    private readonly int _stripes;
    private SafeFileHandle? _file;
    private long _end;
    private byte[] _buffer = new byte[RecordBytes * 64];
    private int _buffered;

    /// <summary>
    /// Reads the journal at <paramref name="path"/> (nothing is written until <see cref="Start"/>);
    /// a different fingerprint, block size or stripe count starts it empty.
    /// </summary>
    public SsdJournal(string path, UInt128 fingerprint, long blockBytes, int stripes, int numSlots)
    {
        _path = path;
        _fingerprint = fingerprint;
        _blockBytes = blockBytes;
        _stripes = stripes;
        _numSlots = numSlots;
        Slots = new SsdRecord?[numSlots];
        Load();
    }

    /// <summary>The block each slot holds after replay (null = empty).</summary>
    public SsdRecord?[] Slots { get; }

    /// <summary>Why the previous content was discarded, or null when it was reused.</summary>
    public string? DiscardReason { get; private set; }

    /// <summary>Records dropped at open because they were torn (a crash or kill during a write).</summary>
    public long DroppedRecords { get; private set; }

    /// <summary>Blocks dropped at open because their slot is beyond the current size (ssd_cache_gb shrank).</summary>
    public long BeyondSizeBlocks { get; private set; }

    /// <summary>Writes the compact journal of the slot table (as <see cref="Keep"/> left it) and opens it for appending.</summary>
    public void Start()
    {
        if (_file is not null) throw new InvalidOperationException("the SSD journal is started already");
        _file = Rewrite();
    }

    /// <summary>Before <see cref="Start"/>: the slot table becomes exactly <paramref name="live"/> (the blocks restored).</summary>
    public void Keep(IEnumerable<SsdRecord> live)
    {
        var kept = live.ToArray();
        Array.Clear(Slots);
        foreach (SsdRecord r in kept) Slots[r.Slot] = r;
    }

    /// <summary>Bytes in the journal file.</summary>
    public long Length => _end + _buffered;

    /// <summary>Queues "slot holds block" (written by <see cref="Flush"/>).</summary>
    public void AppendPut(in SsdRecord r) => Append(r.HasParent ? PutRecord : PutRootRecord, r.Slot, r.Key, r.Parent, r.Checksum);

    /// <summary>Queues "slot is empty" (written by <see cref="Flush"/>).</summary>
    public void AppendRemove(int slot) => Append(RemoveRecord, slot, 0, 0, 0);

    /// <summary>Writes queued records to the file in one call.</summary>
    public void Flush()
    {
        if (_buffered == 0) return;
        if (_file is null) throw new InvalidOperationException("the SSD journal is not started");
        RandomAccess.Write(_file, _buffer.AsSpan(0, _buffered), _end);
        _end += _buffered;
        _buffered = 0;
    }

    /// <summary>Replaces the journal by the live records (bounded size); caller passes the slot table.</summary>
    public void Compact(IEnumerable<SsdRecord> live)
    {
        Flush();
        _file?.Dispose();
        _file = Rewrite(live);
    }

    private void Append(uint type, int slot, UInt128 key, UInt128 parent, ulong checksum)
    {
        if (_buffered + RecordBytes > _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
        Span<byte> r = _buffer.AsSpan(_buffered, RecordBytes);
        r.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(r, type);
        BinaryPrimitives.WriteInt32LittleEndian(r[4..], slot);
        WriteU128(r[8..], key);
        WriteU128(r[24..], parent);
        BinaryPrimitives.WriteUInt64LittleEndian(r[40..], checksum);
        BinaryPrimitives.WriteUInt64LittleEndian(r[56..], XxHash3.HashToUInt64(r[..56]));
        _buffered += RecordBytes;
    }

    private void Load()
    {
        if (!File.Exists(_path)) return;
        byte[] data;
        try
        {
            data = File.ReadAllBytes(_path);
        }
        catch (IOException e)
        {
            DiscardReason = $"journal unreadable: {e.Message}";
            return;
        }
        if (data.Length >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(data) == OlderMagic)
        {
            DiscardReason = "the journal is of an older FlexKv version";
            return;
        }
        if (data.Length < HeaderBytes)
        {
            DiscardReason = "journal header missing";
            return;
        }
        if (!HeaderMatches(data, out string? why))
        {
            DiscardReason = why;
            return;
        }
        Dictionary<int, bool>? beyond = null; // slots past the current size: do they hold a block at the end?
        for (int o = HeaderBytes; o + RecordBytes <= data.Length; o += RecordBytes)
        {
            ReadOnlySpan<byte> r = data.AsSpan(o, RecordBytes);
            if (BinaryPrimitives.ReadUInt64LittleEndian(r[56..]) != XxHash3.HashToUInt64(r[..56]))
            {
                DroppedRecords += (data.Length - o) / RecordBytes; // torn tail: stop here
                break;
            }
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(r);
            int slot = BinaryPrimitives.ReadInt32LittleEndian(r[4..]);
            SsdRecord? rec = type switch
            {
                PutRecord or PutRootRecord => new SsdRecord(slot, ReadU128(r[8..]), ReadU128(r[24..]), type == PutRecord,
                    BinaryPrimitives.ReadUInt64LittleEndian(r[40..])),
                _ => null,
            };
            if ((uint)slot < (uint)_numSlots) Slots[slot] = rec;
            else if (slot >= 0) (beyond ??= new())[slot] = rec is not null;
            else DroppedRecords++;
        }
        BeyondSizeBlocks = beyond?.Count(b => b.Value) ?? 0;
    }

    private bool HeaderMatches(byte[] data, out string? why)
    {
        why = null;
        if (BinaryPrimitives.ReadUInt64LittleEndian(data) != Magic) why = "not a FlexKv journal";
        else if (ReadU128(data.AsSpan(8)) != _fingerprint) why = "cache fingerprint differs (other model, dtype, layout, TP shard or block size)";
        else if (BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(24)) != _blockBytes) why = "block size differs";
        else if (BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(32)) != _stripes) why = "the number of SSD directories differs";
        return why is null;
    }

    private SafeFileHandle Rewrite(IEnumerable<SsdRecord>? live = null)
    {
        string tmp = _path + ".tmp";
        var header = new byte[HeaderBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(header, Magic);
        WriteU128(header.AsSpan(8), _fingerprint);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), _blockBytes);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(32), _stripes);
        _buffered = 0;
        foreach (SsdRecord r in live ?? Slots.Where(s => s is not null).Select(s => s!.Value)) AppendPut(r);
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                f.Write(header);
                f.Write(_buffer, 0, _buffered);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, _path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.IoError, $"cannot write the SSD journal '{_path}': {e.Message}", e);
        }
        _end = HeaderBytes + _buffered;
        _buffered = 0;
        return File.OpenHandle(_path, FileMode.Open, FileAccess.Write, FileShare.None);
    }

    private static void WriteU128(Span<byte> dst, UInt128 v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dst, (ulong)v);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], (ulong)(v >> 64));
    }

    private static UInt128 ReadU128(ReadOnlySpan<byte> src) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(src[8..]), BinaryPrimitives.ReadUInt64LittleEndian(src));

    /// <summary>Writes what is queued and closes the file.</summary>
    public void Dispose()
    {
        try { if (_file is not null) Flush(); } catch (IOException) { }
        _file?.Dispose();
    }
}
