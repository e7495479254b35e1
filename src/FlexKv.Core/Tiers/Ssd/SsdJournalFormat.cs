using System.Buffers.Binary;
using System.IO.Hashing;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The journal's bytes. A 64-byte header: magic, cache fingerprint, block bytes, stripe count
/// (the number of directories: slot s lives in file s % n, whatever the size). Then 64-byte
/// records: type, slot, key, parent, the block's seal (<see cref="Hashing.BlockSeal"/>: bound to
/// the key and the cache, keyed with the secret) and the record's own hash, which only finds a
/// torn tail (a record half written when the process died) and protects nothing.
/// </summary>
internal static class SsdJournalFormat
{
    public const ulong Magic = 0x324A_564B_5845_4C46; // "FLEXKVJ2"
    public const ulong OlderMagic = 0x314A_564B_5845_4C46; // "FLEXKVJ1": its header held the slot count
    public const int HeaderBytes = 64;
    public const int RecordBytes = 64;
    private const uint PutRecord = 1, PutRootRecord = 2, RemoveRecord = 3;

    public static void WriteHeader(Span<byte> h, UInt128 fingerprint, long blockBytes, int stripes)
    {
        h[..HeaderBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(h, Magic);
        WriteU128(h[8..], fingerprint);
        BinaryPrimitives.WriteInt64LittleEndian(h[24..], blockBytes);
        BinaryPrimitives.WriteInt32LittleEndian(h[32..], stripes);
    }

    /// <summary>Why a header does not fit this cache (null when it does).</summary>
    public static string? HeaderMismatch(ReadOnlySpan<byte> h, UInt128 fingerprint, long blockBytes, int stripes)
    {
        if (h.Length >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(h) == OlderMagic) return "the journal is of an older FlexKv version";
        if (h.Length < HeaderBytes) return "the journal header is missing";
        if (BinaryPrimitives.ReadUInt64LittleEndian(h) != Magic) return "not a FlexKv journal";
        if (ReadU128(h[8..]) != fingerprint) return "cache fingerprint differs (other model, dtype, layout, TP shard, block size or secret)";
        if (BinaryPrimitives.ReadInt64LittleEndian(h[24..]) != blockBytes) return "block size differs";
        if (BinaryPrimitives.ReadInt32LittleEndian(h[32..]) != stripes) return "the number of SSD directories differs";
        return null;
    }

    public static void WritePut(Span<byte> r, in SsdRecord rec) =>
        Write(r, rec.HasParent ? PutRecord : PutRootRecord, rec.Slot, rec.Key, rec.Parent, rec.Seal);

    public static void WriteRemove(Span<byte> r, int slot) => Write(r, RemoveRecord, slot, 0, 0, 0);

    /// <summary>Decodes a record: false when it is torn; <paramref name="rec"/> is null for "slot is empty".</summary>
    public static bool TryRead(ReadOnlySpan<byte> r, out int slot, out SsdRecord? rec)
    {
        slot = BinaryPrimitives.ReadInt32LittleEndian(r[4..]);
        rec = null;
        if (BinaryPrimitives.ReadUInt64LittleEndian(r[56..]) != XxHash3.HashToUInt64(r[..56])) return false;
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(r);
        if (type is PutRecord or PutRootRecord)
            rec = new SsdRecord(slot, ReadU128(r[8..]), ReadU128(r[24..]), type == PutRecord, ReadU128(r[40..]));
        else if (type != RemoveRecord) return false;
        return true;
    }

    private static void Write(Span<byte> r, uint type, int slot, UInt128 key, UInt128 parent, UInt128 seal)
    {
        r = r[..RecordBytes];
        r.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(r, type);
        BinaryPrimitives.WriteInt32LittleEndian(r[4..], slot);
        WriteU128(r[8..], key);
        WriteU128(r[24..], parent);
        WriteU128(r[40..], seal);
        BinaryPrimitives.WriteUInt64LittleEndian(r[56..], XxHash3.HashToUInt64(r[..56]));
    }

    private static void WriteU128(Span<byte> dst, UInt128 v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dst, (ulong)v);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], (ulong)(v >> 64));
    }

    private static UInt128 ReadU128(ReadOnlySpan<byte> src) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(src[8..]), BinaryPrimitives.ReadUInt64LittleEndian(src));
}
