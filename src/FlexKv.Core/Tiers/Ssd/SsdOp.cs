namespace FlexKv.Core.Tiers.Ssd;

/// <summary>What the SSD writer thread does, in queue order.</summary>
internal enum SsdOpKind : byte
{
    /// <summary>Write a CPU-ready block to an SSD slot, then journal it.</summary>
    Write,
    /// <summary>Journal that a slot lost its block (before the slot is written again).</summary>
    Remove,
    /// <summary>Forget every block (reset_cache).</summary>
    Reset,
}

/// <summary>One queued SSD write-side operation.</summary>
internal readonly record struct SsdOp(SsdOpKind Kind, int Node, int Slot, int CpuSlot, UInt128 Key, UInt128 Parent, bool HasParent);
