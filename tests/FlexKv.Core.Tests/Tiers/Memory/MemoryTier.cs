using System.Collections.Concurrent;
using FlexKv.Core.Engine;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tests.Tiers.Memory;

/// <summary>
/// A test-only owned tier that keeps blocks in managed arrays, with a reader and a writer
/// thread like the real tiers. It proves the tier seam: this folder plus one line in a test's
/// list of tier openers (<see cref="Open"/>) stacks it below SSD. Switches inject faults.
/// </summary>
internal sealed unsafe class MemoryTier : ILowerTier
{
    private readonly TierContext _ctx;
    private readonly byte[][] _blocks;
    private readonly UInt128[] _seals;
    private readonly BlockSeal _seal;
    private readonly BatchWorker<TierWrite> _writer;
    private readonly StagedReader _reader;
    private BlockIndex? _index;
    private int _tier;
    private long _written, _read;

    private MemoryTier(TierContext ctx, int slots)
    {
        _ctx = ctx;
        _blocks = new byte[slots][];
        _seals = new UInt128[slots];
        _seal = new BlockSeal(ctx.Fingerprint, ctx.Options.Secret);
        Slots = new SlotPool(slots);
        _writer = new BatchWorker<TierWrite>("test-memory-write", 1024, 16, RunWrites, (b, e) => { }, ctx.WritesDone);
        _reader = new StagedReader("test-memory-read", 16, RunReads, ctx.ReadsDone, BlockFailure.IoError);
    }

    /// <summary>An opener with <paramref name="slots"/> slots (the one line a tier list needs).</summary>
    public static Func<TierContext, ILowerTier?> Open(int slots, Action<MemoryTier>? created = null) =>
        ctx =>
        {
            var t = new MemoryTier(ctx, slots);
            created?.Invoke(t);
            return t;
        };

    /// <summary>Slots whose stored bytes are flipped (the seal must catch it).</summary>
    public ConcurrentDictionary<int, bool> Corrupt { get; } = new();

    /// <summary>When set, every read fails with an I/O error.</summary>
    public volatile bool FailReads;

    public long BlocksWritten => Interlocked.Read(ref _written);

    public long BlocksRead => Interlocked.Read(ref _read);

    public int SlotOf(int node) => _index!.TierSlotOf(node, _tier);

    public string Name => "memory";
    public SlotPool? Slots { get; }
    public bool ReadsMayStall => false;
    public LookupState? Lookups => null;
    public bool IsAvailable => true;
    public ConcurrentQueue<TierWriteDone> CompletedWrites { get; } = new();
    public ConcurrentQueue<string> Warnings { get; } = new();
    public int QueuedWrites => _writer.Count;
    public int QueuedReads => _reader.Count;

    public void Attach(BlockIndex index, int tier)
    {
        _index = index;
        _tier = tier;
        index.OnTierSlotFreed(tier, slot => _blocks[slot] = null!);
    }

    public void Commit() { }

    public bool TryWrite(in TierWrite w) => _writer.TryAdd(w);

    public void SubmitReads(TransferTask task, int tier) => _reader.Submit(task, tier);

    public FlexKv.Core.Tiers.Remote.IRemoteLookup BeginLookup(ReadOnlySpan<UInt128> keys) => throw new NotSupportedException();

    public void Clear() => _writer.Add(new TierWrite(-1, -1, -1, 0, 0, false));

    public void FillStats(EngineStats stats, int writesPending) { } // the stats keys name SSD and Redis only

    private bool RunWrites(List<TierWrite> batch)
    {
        foreach (TierWrite w in batch)
        {
            if (w.Node < 0) { Array.Clear(_blocks); continue; } // Clear
            var src = new ReadOnlySpan<byte>(_ctx.CpuSlot(w.CpuSlot), (int)_ctx.BlockBytes);
            _blocks[w.TierSlot] = src.ToArray();
            _seals[w.TierSlot] = _seal.Seal(w.Key, src);
            Interlocked.Increment(ref _written);
            CompletedWrites.Enqueue(new TierWriteDone(w.Node, true));
        }
        return true;
    }

    private void RunReads(List<(TransferTask Task, int Index)> batch)
    {
        foreach (var (task, i) in batch)
        {
            int slot = task.SourceSlot[i];
            byte[]? b = _blocks[slot];
            var dst = new Span<byte>(_ctx.CpuSlot(task.CpuSlots[i]), (int)_ctx.BlockBytes);
            if (FailReads || b is null) task.Fail(i, BlockFailure.IoError);
            else
            {
                b.CopyTo(dst);
                if (Corrupt.ContainsKey(slot)) dst[0] ^= 0xFF;
                if (!_seal.Verify(task.Keys[i], dst, _seals[slot])) task.Fail(i, BlockFailure.Checksum);
                else Interlocked.Increment(ref _read);
            }
        }
    }

    public bool Stop(int timeoutMs)
    {
        bool ok = _writer.Stop(timeoutMs) & _reader.Stop(timeoutMs);
        if (ok) _seal.Dispose();
        return ok;
    }

    public void Abandon() { }
}
