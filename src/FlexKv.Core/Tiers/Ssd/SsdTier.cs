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
/// journal names what each slot holds). A writer thread does CPU → SSD write-through and the
/// journal; a reader thread stages SSD → CPU for loads, each block's seal verified for the key
/// the load asked for, so bytes written for another key never pass.
/// </summary>
internal sealed unsafe class SsdTier : ILowerTier
{
    private const int Batch = 64;
    private readonly TierContext _ctx;
    private readonly IBlockDevice _device;
    private readonly DirectFileDevice _files;
    private readonly SsdJournal _journal;
    private readonly SsdDirectories _directories;
    private readonly BlockSeal _seal;
    private readonly UInt128[] _seals; // per slot; a slot is read only while no write to it runs
    private readonly long _blockBytes;
    private readonly BatchWorker<SsdOp> _writer;
    private readonly StagedReader _reader;
    private BlockIndex? _index;
    private int _tier;
    private volatile bool _full;
    private long _bytesWritten, _bytesRead, _checksumFailures, _writeErrors, _readErrors, _restored;

    private SsdTier(TierContext ctx, SsdDirectories dirs, DirectFileDevice files, IBlockDevice device, SsdJournal journal)
    {
        _ctx = ctx;
        _directories = dirs;
        _files = files;
        _device = device;
        _journal = journal;
        _blockBytes = ctx.BlockBytes;
        _seal = new BlockSeal(ctx.Fingerprint, ctx.Options.Secret);
        _seals = new UInt128[device.NumSlots];
        foreach (SsdRecord? r in journal.Slots)
            if (r is { } rec) _seals[rec.Slot] = rec.Seal;
        Slots = new SlotPool(device.NumSlots);
        _writer = new BatchWorker<SsdOp>("flexkv-ssd-write", 1 << 16, Batch, RunWrites, FailWrites, AfterWrites);
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
            int slots = SsdSpace.Plan(o.SsdCacheGb, ctx.BlockBytes, dirs.Paths);
            files = new DirectFileDevice(dirs.Paths, slots, ctx.BlockBytes, ctx.Warnings.Add, o.SsdDirectIo);
            IBlockDevice device = ctx.WrapSsdDevice is null ? files : ctx.WrapSsdDevice(files);
            var journal = new SsdJournal(Path.Combine(dirs.Paths[0], "flexkv-journal.bin"), ctx.Fingerprint, ctx.BlockBytes,
                dirs.Paths.Length, device.NumSlots);
            return new SsdTier(ctx, dirs, files, device, journal);
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

    public bool IsAvailable => !_full;

    public ConcurrentQueue<TierWriteDone> CompletedWrites { get; } = new();

    public ConcurrentQueue<string> Warnings { get; } = new();

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
        if (!SsdCacheLabel.TryWrite(_directories.Paths[0], _ctx.Options, _ctx.Fingerprint, out string? why))
            _ctx.Warnings.Add($"the SSD cache's label ({SsdCacheLabel.FileName}, for inspection only) was not written: {why}");
    }

    public bool TryWrite(in TierWrite w)
    {
        if (_full) return false;
        _writer.Add(new SsdOp(SsdOpKind.Write, w.Node, w.TierSlot, w.CpuSlot, w.Key, w.Parent, w.HasParent));
        return true;
    }

    public void SubmitReads(TransferTask task, int tier) => _reader.Submit(task, tier);

    public Remote.IRemoteLookup BeginLookup(ReadOnlySpan<UInt128> keys) => throw new NotSupportedException("the SSD tier has no lookups");

    public void Clear()
    {
        _full = false; // the reset frees the disk room the cache used
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
        s.SsdFull = _full;
        s.SsdBlocksWritten = Interlocked.Read(ref _bytesWritten) / _blockBytes;
        s.SsdBlocksRead = Interlocked.Read(ref _bytesRead) / _blockBytes;
        s.SsdChecksumFailures = Interlocked.Read(ref _checksumFailures);
        s.SsdWriteErrors = Interlocked.Read(ref _writeErrors);
        s.SsdReadErrors = Interlocked.Read(ref _readErrors);
        s.SsdDirect = _device.Direct;
    }

    // ---- writer thread ----------------------------------------------------------------------

    // Removes are journaled before any write of the batch lands on disk, so the journal never
    // names a slot whose bytes are being replaced; Puts are journaled after their bytes landed.
    private bool RunWrites(List<SsdOp> batch)
    {
        int start = 0;
        while (start < batch.Count)
        {
            int end = start;
            while (end < batch.Count && batch[end].Kind != SsdOpKind.Reset) end++;
            WriteSegment(batch, start, end);
            if (end < batch.Count)
            {
                Array.Clear(_seals);
                _journal.Compact([]);
                _full = false;
                end++;
            }
            start = end;
        }
        return true;
    }

    private void FailWrites(List<SsdOp> batch, Exception e)
    {
        foreach (SsdOp op in batch)
            if (op.Kind == SsdOpKind.Write) Done(op.Node, LibcMethods.Eio);
    }

    // Between batches, so the journal on disk holds exactly the slot table being compacted.
    private void AfterWrites()
    {
        try
        {
            _journal.CompactIfLarge();
        }
        catch (Exception e)
        {
            // The old file is still the journal and still appended to: nothing is lost.
            Warnings.Enqueue($"the SSD journal could not be compacted ({e.Message}); it grows until a later try succeeds");
        }
        _ctx.WritesDone();
    }

    private void WriteSegment(List<SsdOp> batch, int start, int end)
    {
        int writes = 0;
        for (int i = start; i < end; i++)
        {
            if (batch[i].Kind == SsdOpKind.Remove) _journal.AppendRemove(batch[i].Slot);
            else writes++;
        }
        _journal.Flush();
        if (writes == 0) return;
        long started = EngineMetrics.Now();
        Span<int> slots = stackalloc int[writes];
        Span<nint> bufs = stackalloc nint[writes];
        Span<int> errors = stackalloc int[writes];
        Span<int> index = stackalloc int[writes];
        int w = 0;
        for (int i = start; i < end; i++)
            if (batch[i].Kind == SsdOpKind.Write) { slots[w] = batch[i].Slot; index[w] = i; w++; }
        slots.Sort(index);
        for (int k = 0; k < writes; k++)
        {
            SsdOp op = batch[index[k]];
            bufs[k] = (nint)_ctx.CpuSlot(op.CpuSlot);
            _seals[op.Slot] = _seal.Seal(op.Key, new ReadOnlySpan<byte>((void*)bufs[k], (int)_blockBytes));
        }
        _device.Write(slots, bufs, _blockBytes, errors);
        for (int k = 0; k < writes; k++)
        {
            SsdOp op = batch[index[k]];
            if (errors[k] == 0)
            {
                _journal.AppendPut(new SsdRecord(op.Slot, op.Key, op.Parent, op.HasParent, _seals[op.Slot]));
                Interlocked.Add(ref _bytesWritten, _blockBytes);
            }
            else Interlocked.Increment(ref _writeErrors);
        }
        int journalError = 0;
        try
        {
            _journal.Flush();
        }
        catch (IOException)
        {
            journalError = LibcMethods.Eio; // without a journal record the block would not survive a restart
        }
        _ctx.Metrics.Operation(TransferFlow.H2Ssd, EngineMetrics.Now() - started); // one batch: its seals, write and journal
        for (int k = 0; k < writes; k++)
            Done(batch[index[k]].Node, errors[k] != 0 ? errors[k] : journalError);
    }

    private void Done(int node, int errno)
    {
        if (errno == LibcMethods.Enospc && !_full)
        {
            // Disk full: SSD saves stop, everything else goes on (a reset may free room again).
            _full = true;
            Warnings.Enqueue("the SSD cache disk is full; blocks are no longer written to SSD");
        }
        CompletedWrites.Enqueue(new TierWriteDone(node, errno == 0,
            errno == LibcMethods.Enospc ? FailureReason.DiskFull : FailureReason.IoError));
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
