namespace FlexKv.Core.Index;

/// <summary>One block in the index, stored by value in an array and addressed by int id.</summary>
internal struct BlockNode
{
    public UInt128 Key;
    public int Parent;       // node id, or -1 for a first block
    public int Children;     // child nodes present in the index (any tier)
    public int CpuChildren;  // children with a CPU copy: a CPU leaf has none
    public int SsdChildren;  // children with an SSD copy: an SSD leaf has none
    public int ChildHint;    // the child inserted last (validated by key on use), or -1
    public int Slot;         // CPU slot, or -1
    public int SsdSlot;      // SSD slot, or -1
    public int Pins;         // tasks that must not lose this block (in any tier)
    public long LastUse;     // logical clock of the last match/put that walked it
    public uint Generation;  // bumped on free so stale eviction candidates are ignored
    public BlockState State; // the CPU copy (Empty: none)
    public SsdState Ssd;     // the SSD copy
    public bool Remote;      // the remote store said it holds the block (a hint: others may evict it)
}
