using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Transfer;

/// <summary>What a task does.</summary>
public enum TransferKind : byte
{
    /// <summary>CPU → registered cache (a load for vLLM).</summary>
    Get,
    /// <summary>Registered cache → CPU (a save).</summary>
    Put,
}

/// <summary>Task lifecycle: planned → launched → done | failed | cancelled.</summary>
public enum TransferState : byte
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
/// One request's get or put: a list of (device block, CPU slot, index node) triples. Pooled and
/// reused; its arrays only grow, so steady-state planning allocates nothing.
/// </summary>
public sealed class TransferTask
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

    internal int PendingSsdReads;
    internal int PendingRemoteReads;
    internal int RemoteReadsTotal;
    internal UInt128[] RemoteKeys = new UInt128[64]; // key of block i when FromRemote[i] != 0
    internal byte[] FromRemote = new byte[64];
    internal bool WasLaunched;
    internal int SsdReadsTotal;
    internal int[] SsdSlots = new int[64];  // -1: the block is read from its CPU slot
    internal UInt128[] SsdKeys = new UInt128[64]; // key of block i when SsdSlots[i] >= 0: its bytes must be sealed for it
    internal int[] DeviceBlocks = new int[64];
    internal int[] CpuSlots = new int[64];
    internal int[] Nodes = new int[64];
    internal byte[] Failed = new byte[64];

    /// <summary>Whether cancellation was requested.</summary>
    public bool IsCancelled => Volatile.Read(ref _cancelled) != 0;

    internal void Cancel() => Interlocked.Exchange(ref _cancelled, 1);

    internal void Add(int deviceBlock, int cpuSlot, int node)
    {
        if (Count == DeviceBlocks.Length)
        {
            int n = Count * 2;
            Array.Resize(ref DeviceBlocks, n);
            Array.Resize(ref SsdSlots, n);
            Array.Resize(ref SsdKeys, n);
            Array.Resize(ref RemoteKeys, n);
            Array.Resize(ref FromRemote, n);
            Array.Resize(ref CpuSlots, n);
            Array.Resize(ref Nodes, n);
            Array.Resize(ref Failed, n);
        }
        DeviceBlocks[Count] = deviceBlock;
        CpuSlots[Count] = cpuSlot;
        Nodes[Count] = node;
        SsdSlots[Count] = -1;
        FromRemote[Count] = 0;
        Failed[Count] = 0;
        Count++;
    }

    /// <summary>Marks the last added block (key <paramref name="key"/>) as read from SSD slot <paramref name="ssdSlot"/> first.</summary>
    internal void FromSsd(int ssdSlot, UInt128 key)
    {
        SsdSlots[Count - 1] = ssdSlot;
        SsdKeys[Count - 1] = key;
        SsdReadsTotal++;
    }

    /// <summary>Marks the last added block as read from the remote store first.</summary>
    internal void FromRemoteStore(UInt128 key)
    {
        RemoteKeys[Count - 1] = key;
        FromRemote[Count - 1] = 1;
        RemoteReadsTotal++;
    }

    internal void Reset()
    {
        Count = 0;
        RemoteReadsTotal = 0;
        PendingRemoteReads = 0;
        SsdReadsTotal = 0;
        PendingSsdReads = 0;
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
