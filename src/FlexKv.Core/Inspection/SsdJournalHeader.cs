using System.Buffers.Binary;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Inspection;

/// <summary>
/// What a journal's header records (<see cref="SsdJournalFormat"/>: magic, cache fingerprint,
/// block bytes, stripe count), read here because an inspection has no configuration to compare
/// the header with: the journal itself only answers "does it fit this cache". Slots are not in
/// the header; <see cref="Slots"/> comes from the data files' sizes.
/// </summary>
internal readonly record struct SsdJournalHeader(UInt128 Fingerprint, long BlockBytes, int Stripes, int Slots)
{
    /// <summary>The header at the start of <paramref name="journal"/> (the file's bytes); null with <paramref name="why"/> when there is none.</summary>
    public static SsdJournalHeader? TryRead(ReadOnlySpan<byte> journal, out string? why, Func<int, long, int> slotsOf)
    {
        why = null;
        if (journal.Length >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(journal) == SsdJournalFormat.OlderMagic)
        {
            why = "the journal is of an older FlexKv version (an engine of this version starts the cache empty)";
            return null;
        }
        if (journal.Length < SsdJournalFormat.HeaderBytes) { why = "the journal header is missing (the file is shorter than 64 bytes)"; return null; }
        ReadOnlySpan<byte> h = journal[..SsdJournalFormat.HeaderBytes];
        if (BinaryPrimitives.ReadUInt64LittleEndian(h) != SsdJournalFormat.Magic) { why = "not a FlexKv journal (magic differs)"; return null; }
        var fingerprint = new UInt128(BinaryPrimitives.ReadUInt64LittleEndian(h[16..]), BinaryPrimitives.ReadUInt64LittleEndian(h[8..]));
        long blockBytes = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
        int stripes = BinaryPrimitives.ReadInt32LittleEndian(h[32..]);
        if (blockBytes < 1 || stripes < 1) { why = $"the journal header is damaged (block bytes {blockBytes}, {stripes} directories)"; return null; }
        return new SsdJournalHeader(fingerprint, blockBytes, stripes, slotsOf(stripes, blockBytes));
    }
}
