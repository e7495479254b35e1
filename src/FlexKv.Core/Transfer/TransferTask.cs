using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Transfer;

/// <summary>What a task does.</summary>
internal enum TransferKind : byte
{
    /// <summary>CPU → registered cache (a load for vLLM).</summary>
    Get,
    /// <summary>Registered cache → CPU (a save).</summary>
    Put,
}

/// <summary>Task lifecycle: planned → launched → done | failed | cancelled.</summary>
internal enum TransferState : byte
{
    /// <summary>Planned, waiting for launch.</summary>
    Planned,
    /// <summary>Handed to the copy threads.</summary>
    Launched,
    /// <summary>Every block copied.</summary>
    Done,
    /// <summary>At least one block failed.</summary>
    Failed,
    /// <summary>Cancelled before all blocks were copied.</summary>
    Cancelled,
}

/// <summary>
/// One request's get or put: a list of (device block, CPU slot, index node) triples. A get's
/// block may first be read from a lower tier into its CPU slot (staging): <see cref="Source"/>
/// says from which, and the tiers read in order (hot to cold) before the copy threads run.
/// Pooled and reused; its arrays only grow, so steady-state planning allocates nothing.
/// </summary>
internal sealed class TransferTask
{
    private int _cancelled;
    internal int PendingChunks;
    internal int Executing;
    internal int FailedCount;

    /// <summary>Get or put.</summary>
    public TransferKind Kind { get; internal set; }

    /// <summary>Current state.</summary>
    public TransferState State { get; internal set; }

    /// <summary>The request that owns the task.</summary>
    public string RequestId { get; internal set; } = "";

    /// <summary>Number of blocks.</summary>
    public int Count { get; private set; }

    internal bool WasLaunched;
    /// <summary>Bit t: some block is staged from lower tier t.</summary>
    internal int StageMask;
    /// <summary>The tier staging now (-1: none yet); its reads still outstanding.</summary>
    internal int Stage = -1;
    internal int PendingReads;
    /// <summary>When the staging tier got the task's reads (Stopwatch ticks; the metrics' read timing).</summary>
    internal long StageStartTicks;
    /// <summary>When the copy threads got the task, and when its last slice ended (Stopwatch ticks; 0: not yet).</summary>
    internal long CopyStartTicks, CopyEndTicks;
    internal int[] DeviceBlocks = new int[64];
    internal int[] CpuSlots = new int[64];
    internal int[] Nodes = new int[64];
    /// <summary>Per block: 0 = already in its CPU slot, t + 1 = read from lower tier t first.</summary>
    internal byte[] Source = new byte[64];
    internal int[] SourceSlot = new int[64];   // the tier's slot (owned tiers), else -1
    internal UInt128[] Keys = new UInt128[64]; // the block's key: a staged read verifies its bytes for it
    internal byte[] Failed = new byte[64];     // a BlockFailure per block

    /// <summary>Whether cancellation was requested.</summary>
    public bool IsCancelled => Volatile.Read(ref _cancelled) != 0;

    internal void Cancel() => Interlocked.Exchange(ref _cancelled, 1);

    internal void Add(int deviceBlock, int cpuSlot, int node)
    {
        if (Count == DeviceBlocks.Length)
        {
            int n = Count * 2;
            Array.Resize(ref DeviceBlocks, n);
            Array.Resize(ref Source, n);
            Array.Resize(ref SourceSlot, n);
            Array.Resize(ref Keys, n);
            Array.Resize(ref CpuSlots, n);
            Array.Resize(ref Nodes, n);
            Array.Resize(ref Failed, n);
        }
        DeviceBlocks[Count] = deviceBlock;
        CpuSlots[Count] = cpuSlot;
        Nodes[Count] = node;
        Source[Count] = 0;
        SourceSlot[Count] = -1;
        Failed[Count] = 0;
        Count++;
    }

    /// <summary>Marks the last added block (key <paramref name="key"/>) as read from lower tier <paramref name="tier"/> (its slot <paramref name="slot"/>) first.</summary>
    internal void FromTier(int tier, int slot, UInt128 key)
    {
        Source[Count - 1] = (byte)(tier + 1);
        SourceSlot[Count - 1] = slot;
        Keys[Count - 1] = key;
        StageMask |= 1 << tier;
    }

    /// <summary>Records why block <paramref name="i"/> failed (the first reason stays).</summary>
    internal void Fail(int i, BlockFailure why)
    {
        if (Failed[i] == 0) Failed[i] = (byte)why;
    }

    /// <summary>Whether the task is staging from a tier whose reads may wait on another machine.</summary>
    internal bool StagingFrom(int tier) => Stage == tier && Volatile.Read(ref PendingReads) > 0;

    internal void Reset()
    {
        Count = 0;
        StageMask = 0;
        Stage = -1;
        PendingReads = 0;
        StageStartTicks = 0;
        CopyStartTicks = 0;
        CopyEndTicks = 0;
        WasLaunched = false;
        _cancelled = 0;
        PendingChunks = 0;
        Executing = 0;
        FailedCount = 0;
        State = TransferState.Planned;
        RequestId = "";
    }

    /// <summary>Pool policy: tasks are reset on return.</summary>
    internal sealed class PoolPolicy : PooledObjectPolicy<TransferTask>
    {
        public override TransferTask Create() => new();

        public override bool Return(TransferTask obj)
        {
            obj.Reset();
            return true;
        }
    }
}
