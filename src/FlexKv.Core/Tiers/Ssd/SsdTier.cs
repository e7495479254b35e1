using System.Collections.Concurrent;
using FlexKv.Core.Engine;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Memory;
using FlexKv.Core.Metrics;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier: an owned tier of slots in preallocated files, persistent across restarts (the
/// journal names what each slot holds). The write side (<see cref="SsdWriter"/>: a writer
/// thread and a few I/O threads per directory) does CPU → SSD write-through and the journal; a
/// reader thread stages SSD → CPU for loads, each block's seal verified for the key the load
/// asked for, so bytes written for another key never pass.
/// </summary>
internal sealed unsafe class SsdTier : ILowerTier
{
    private const int Batch = 64;
    private const int LargeCacheSlots = 1 << 16;
    private readonly TierContext _ctx;
    private readonly IBlockDevice _device;
    private readonly DirectFileDevice _files;
    private readonly SsdJournal _journal;
    private readonly SsdDirectories _directories;
    private readonly BlockSeal _seal;
    private readonly UInt128[] _seals; // per slot; a slot is read only while no write to it runs
    private readonly long _blockBytes;
    private readonly SsdWriter _writer;
    private readonly StagedReader _reader;
    private BlockIndex? _index;
    private int _tier;
    private long _bytesRead, _checksumFailures, _readErrors, _restored;

    private SsdTier(TierContext ctx, SsdDirectories dirs, DirectFileDevice files, IBlockDevice device, SsdJournal journal, UInt128[] seals)
    {
        _ctx = ctx;
        _directories = dirs;
        _files = files;
        _device = device;
        _journal = journal;
        _blockBytes = ctx.BlockBytes;
        _seal = new BlockSeal(ctx.Fingerprint, ctx.Options.Secret);
        _seals = seals;
        Slots = new SlotPool(device.NumSlots);
        _writer = new SsdWriter(ctx, device, journal, _seal, _seals, dirs.Paths.Length);
        _reader = new StagedReader("flexkv-ssd-read", Batch, RunReads, ctx.ReadsDone, BlockFailure.IoError);
    }

    /// <summary>Opens the tier when ssd_cache_gb is set. Nothing on disk is cut or rewritten yet (see <see cref="Commit"/>); what was allocated goes if opening fails.</summary>
    public static ILowerTier? Open(TierContext ctx)
    {
        var o = ctx.Options;
        if (!(o.SsdCacheGb > 0)) return null;
        var dirs = new SsdDirectories(o.SsdCacheDir);
        DirectFileDevice? files = null;
        try
        {
            int slots = SsdSpace.Plan(o.SsdCacheGb, ctx.BlockBytes, dirs.Paths, o.SsdPreallocate);
            files = new DirectFileDevice(dirs.Paths, slots, ctx.BlockBytes, ctx.Warnings.Add, o.SsdDirectIo, o.SsdPreallocate);
            IBlockDevice device = ctx.WrapSsdDevice is null ? files : ctx.WrapSsdDevice(files);
            var seals = new UInt128[device.NumSlots];
            var journal = new SsdJournal(Path.Combine(dirs.Paths[0], "flexkv-journal.bin"), ctx.Fingerprint, ctx.BlockBytes,
                dirs.Paths.Length, device.NumSlots, seals);
            return new SsdTier(ctx, dirs, files, device, journal, seals);
        }
        catch
        {
            files?.Abandon();
            dirs.Dispose();
            throw;
        }
    }

    public string Name => "ssd";

    public SlotPool? Slots { get; }

    public bool ReadsMayStall => false;

    public LookupState? Lookups => null;

    public bool IsAvailable => !_writer.Full;

    public ConcurrentQueue<TierWriteDone> CompletedWrites => _writer.CompletedWrites;

    public ConcurrentQueue<string> Warnings => _writer.Warnings;

    /// <summary>Why the SSD content of a previous run was not reused (null when it was).</summary>
    public string? DiscardReason => _journal.DiscardReason;

    public void Attach(BlockIndex index, int tier)
    {
        _index = index;
        _tier = tier;
        SsdRestore.Result r = SsdRestore.Run(_journal, index, tier, Slots!, _ctx.Options.SsdPersist);
        _restored = r.Kept;
        if (_ctx.Options.SsdPersist) WarnAboutLostBlocks(r.Orphans);
        // The journal forgets a slot before it is written again.
        index.OnTierSlotFreed(tier, slot => _writer.Add(new SsdOp(SsdOpKind.Remove, -1, slot, -1, 0, 0, false)));
    }

    // Every reason a block of the previous run is not reused reaches stats()["warnings"] (and the log).
    private void WarnAboutLostBlocks(long orphans)
    {
        string dir = _directories.Paths[0];
        if (_journal.DiscardReason is { } why)
            _ctx.Warnings.Add($"the SSD cache in '{dir}' was not reused ({why}); it starts empty");
        if (_journal.DroppedRecords > 0)
            _ctx.Warnings.Add($"{_journal.DroppedRecords} torn records at the end of the SSD journal in '{dir}' were dropped " +
                              "(a crash or kill while writing); the blocks they named are not reused");
        if (_journal.BeyondSizeBlocks > 0)
            _ctx.Warnings.Add($"{_journal.BeyondSizeBlocks} SSD blocks beyond the size ssd_cache_gb now gives were dropped");
        if (orphans > 0)
            _ctx.Warnings.Add($"{orphans} SSD blocks whose parent block is not on SSD were dropped (they cannot be matched)");
    }

    // The journal is rewritten as restored, then files larger than ssd_cache_gb now asks for are
    // cut (journal first, so it never names a cut slot).
    public void Commit()
    {
        _journal.Start();
        _files.TrimToSize();
        // Opening a large cache leaves the replay's per-slot arrays and the restore's key map
        // (tens of bytes a slot) as garbage: the memory goes back to the system now, once,
        // rather than staying with the process until some later collection.
        if (_device.NumSlots >= LargeCacheSlots) GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!SsdCacheLabel.TryWrite(_directories.Paths[0], _ctx.Options, _ctx.Fingerprint, out string? why))
            _ctx.Warnings.Add($"the SSD cache's label ({SsdCacheLabel.FileName}, for inspection only) was not written: {why}");
    }

    public bool TryWrite(in TierWrite w)
    {
        if (_writer.Full) return false;
        _writer.Add(new SsdOp(SsdOpKind.Write, w.Node, w.TierSlot, w.CpuSlot, w.Key, w.Parent, w.HasParent));
        return true;
    }

    public void SubmitReads(TransferTask task, int tier) => _reader.Submit(task, tier);

    public Remote.IRemoteLookup BeginLookup(ReadOnlySpan<UInt128> keys) => throw new NotSupportedException("the SSD tier has no lookups");

    public void Clear()
    {
        _writer.ClearFull(); // the reset frees the disk room the cache used
        _writer.Add(new SsdOp(SsdOpKind.Reset, -1, -1, -1, 0, 0, false));
    }

    public int QueuedWrites => _writer.Count;

    public int QueuedReads => _reader.Count;

    public void FillStats(EngineStats s, int writesPending)
    {
        s.SsdWritesPending = writesPending;
        s.SsdBlocksUsed = _index?.TierUsedSlots(_tier) ?? 0;
        s.SsdBlocksTotal = _index?.TierCapacity(_tier) ?? 0;
        s.SsdEvictions = _index?.TierEvictions(_tier) ?? 0;
        s.SsdRestoredBlocks = _restored;
        s.SsdFull = _writer.Full;
        s.SsdWriteDepth = _writer.Depth;
        s.SsdReadDepth = 1; // one reader thread: reads keep their lead over the disk's depth-1 limit
        s.SsdBlocksWritten = _writer.BytesWritten / _blockBytes;
        s.SsdBlocksRead = Interlocked.Read(ref _bytesRead) / _blockBytes;
        s.SsdChecksumFailures = Interlocked.Read(ref _checksumFailures);
        s.SsdWriteErrors = _writer.WriteErrors;
        s.SsdReadErrors = Interlocked.Read(ref _readErrors);
        s.SsdDirect = _device.Direct;
    }

    // ---- reader thread ----------------------------------------------------------------------

    private void RunReads(List<(TransferTask Task, int Index)> batch)
    {
        int n = batch.Count;
        Span<int> slots = stackalloc int[n];
        Span<int> index = stackalloc int[n];
        Span<nint> bufs = stackalloc nint[n];
        Span<int> errors = stackalloc int[n];
        for (int k = 0; k < n; k++) { slots[k] = batch[k].Task.SourceSlot[batch[k].Index]; index[k] = k; }
        slots.Sort(index);
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[index[k]];
            bufs[k] = (nint)_ctx.CpuSlot(task.CpuSlots[i]);
        }
        _device.Read(slots, bufs, _blockBytes, errors);
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[index[k]];
            if (errors[k] != 0)
            {
                Interlocked.Increment(ref _readErrors);
                task.Fail(i, BlockFailure.IoError);
            }
            else if (!_seal.Verify(task.Keys[i], new ReadOnlySpan<byte>((void*)bufs[k], (int)_blockBytes), _seals[slots[k]]))
            {
                Interlocked.Increment(ref _checksumFailures);
                task.Fail(i, BlockFailure.Checksum);
            }
            else Interlocked.Add(ref _bytesRead, _blockBytes);
        }
    }

    public void Abandon() => _files.Abandon();

    public bool Stop(int timeoutMs)
    {
        bool ok = _writer.Stop(timeoutMs) & _reader.Stop(timeoutMs);
        if (ok)
        {
            _journal.Dispose();
            _device.Dispose();
            _seal.Dispose();
            _directories.Dispose();
        }
        return ok;
    }
}
