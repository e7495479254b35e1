using System.Buffers.Binary;

namespace FlexKv.Core.Inspection;

/// <summary>
/// The geometry a journal's header records: magic, cache fingerprint, block bytes, slots. The
/// layout is <see cref="Tiers.Ssd.SsdJournal"/>'s (its Rewrite writes it); it is read here only
/// because the journal offers no read-only open to ask it, and nothing else of the format is
/// repeated: the records are read by <see cref="Tiers.Ssd.SsdJournal"/> itself.
/// </summary>
public readonly record struct SsdJournalHeader(UInt128 Fingerprint, long BlockBytes, int Slots)
{
    private const ulong Magic = 0x314A_564B_5845_4C46; // "FLEXKVJ1", as SsdJournal writes it
    private const int HeaderBytes = 64;

    /// <summary>The header at the start of <paramref name="journal"/> (the file's bytes); null with <paramref name="why"/> when there is none.</summary>
    public static SsdJournalHeader? TryRead(ReadOnlySpan<byte> journal, out string? why)
    {
        why = null;
        if (journal.Length < HeaderBytes) { why = "the journal header is missing (the file is shorter than 64 bytes)"; return null; }
        ReadOnlySpan<byte> h = journal[..HeaderBytes];
        if (BinaryPrimitives.ReadUInt64LittleEndian(h) != Magic) { why = "not a FlexKv journal of this version (magic differs)"; return null; }
        var fingerprint = new UInt128(BinaryPrimitives.ReadUInt64LittleEndian(h[16..]), BinaryPrimitives.ReadUInt64LittleEndian(h[8..]));
        return new SsdJournalHeader(fingerprint, BinaryPrimitives.ReadInt64LittleEndian(h[24..]), BinaryPrimitives.ReadInt32LittleEndian(h[32..]));
    }
}
