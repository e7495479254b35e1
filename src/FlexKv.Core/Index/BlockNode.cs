namespace FlexKv.Core.Index;

/// <summary>
/// One block in the index, stored by value in an array and addressed by int id. The CPU copy is
/// described here (the CPU tier is the staging area every load and save goes through); a lower
/// tier's copy is a bit in <see cref="Ready"/> / <see cref="Writing"/>, and its slot and child
/// count live with that tier (<see cref="TierCopies"/>).
/// </summary>
internal struct BlockNode
{
    public UInt128 Key;
    public long LastUse;     // logical clock of the last match/put that walked it
    public int Parent;       // node id, or -1 for a first block (or a run found after vLLM's own hit)
    public int Children;     // child nodes present in the index (any tier)
    public int CpuChildren;  // children with a CPU copy: a CPU leaf has none
    public int ChildHint;    // the child inserted last (validated by key on use), or -1
    public int Slot;         // CPU slot, or -1
    public int Pins;         // tasks that must not lose this block (in any tier)
    public uint Generation;  // bumped on free so stale eviction candidates are ignored
    public BlockState State; // the CPU copy (Empty: none)
    public byte Ready;       // bit t: lower tier t holds a readable copy
    public byte Writing;     // bit t: lower tier t is writing its copy
}
