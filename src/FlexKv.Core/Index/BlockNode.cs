namespace FlexKv.Core.Index;

/// <summary>One block in the index, stored by value in an array and addressed by int id.</summary>
internal struct BlockNode
{
    public UInt128 Key;
    public int Parent;       // node id, or -1 for a first block
    public int Children;     // child nodes present in the index
    public int ChildHint;    // the child inserted last (validated by key on use), or -1
    public int Slot;         // CPU slot, or -1
    public int Pins;         // tasks that must not lose this block
    public long LastUse;     // logical clock of the last match/put that walked it
    public uint Generation;  // bumped on free so stale eviction candidates are ignored
    public BlockState State;
}
