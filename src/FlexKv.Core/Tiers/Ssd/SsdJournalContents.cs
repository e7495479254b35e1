namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// What the journal said each slot holds when it was opened: the input of the restore
/// (<see cref="SsdRestore"/>), dropped as soon as the index has the blocks. Plain arrays by
/// slot, so a cache of millions of blocks costs 33 bytes a slot for the few seconds of a
/// restore and nothing afterwards; the seals go to the tier, which keeps them.
/// </summary>
internal sealed class SsdJournalContents(int slots)
{
    public const byte Empty = 0, Root = 1, Child = 2;

    /// <summary>Per slot: <see cref="Empty"/>, a first block (<see cref="Root"/>) or a block with a parent (<see cref="Child"/>).</summary>
    public readonly byte[] Kind = new byte[slots];

    public readonly UInt128[] Keys = new UInt128[slots];

    public readonly UInt128[] Parents = new UInt128[slots];

    /// <summary>Slots that hold a block.</summary>
    public int Live;
}
