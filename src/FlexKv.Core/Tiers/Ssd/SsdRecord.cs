namespace FlexKv.Core.Tiers.Ssd;

/// <summary>What the journal knows about one SSD slot: the block stored there and its <see cref="Hashing.BlockSeal"/> tag.</summary>
internal readonly record struct SsdRecord(int Slot, UInt128 Key, UInt128 Parent, bool HasParent, UInt128 Seal);
