using System.Collections.Concurrent;
using FlexKv.Core.Hashing;
using FlexKv.Core.Memory;
using FlexKv.Core.Metrics;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier's write side: several writes in flight per device. The writer thread
/// (<c>flexkv-ssd-write</c>) takes queued operations in batches, journals removes, sorts a
/// batch's writes into disk order and cuts them into runs of up to <see cref="RunBytes"/> in
/// one file; a few I/O threads (<c>flexkv-ssd-io-N</c>, <see cref="DepthPerDirectory"/> per
/// directory) each seal a run's blocks and write it, so sealing overlaps other runs' I/O.
/// Batches commit in queue order: when a batch's last run ended and every batch before it was
/// committed, the I/O thread that ended it appends its blocks' journal records and reports
/// them. So the rules of the single-threaded writer hold: a block enters the journal only
/// after its bytes were written; a slot's remove is journaled before the slot is written
/// again; the journal only ever grows by whole batches in queue order (a parent is never
/// journaled after its child), and a reset waits for every write queued before it.
/// The journal, the commit queue and the spare batches are guarded by one lock.
/// </summary>
internal sealed unsafe class SsdWriter
{
    /// <summary>
    /// I/O threads per directory. Measured on this project's 2-core virtual disks (2 GiB of
    /// 2 MiB blocks through the tier, 3 interleaved rounds): depth 1 3.2-4.2 GB/s, 2 4.0-4.5,
    /// 3 3.6-5.6, 4 4.9-5.4, 6 4.0-4.4; fio agrees that a few writes in flight beat one and
    /// that 8 fall back below one.
    /// </summary>
    public const int DepthPerDirectory = 4;

    /// <summary>Bytes per run: what one device call moves (DirectFileDevice coalesces neighbours up to this).</summary>
    public const long RunBytes = DirectFileDevice.MaxRunBytes;

    private const int MaxBatch = 64;
    // Batches between the writer thread and the commit: enough for every I/O thread to have
    // runs of small blocks queued while a batch of large ones is being written.
    private const int Batches = 4;

    /// <summary>
    /// The most journal records appended between two compaction checks: one queue batch's
    /// removes, and one commit (every batch in flight).
    /// </summary>
    public const int MaxRecordsBetweenCompactionChecks = MaxBatch * (Batches + 1);

    private readonly TierContext _ctx;
    private readonly IBlockDevice _device;
    private readonly SsdJournal _journal;
    private readonly BlockSeal _seal;
    private readonly UInt128[] _seals;
    private readonly int _stripes;
    private readonly long _blockBytes;
    private readonly int _blocksPerRun;
    private readonly BatchWorker<SsdOp> _writer;
    private readonly ParallelWorker<SsdWriteRun> _io;
    private readonly object _lock = new();
    private readonly Queue<SsdWriteBatch> _uncommitted = new(Batches);
    private readonly Stack<SsdWriteBatch> _spare = new(Batches);
    private readonly List<SsdWriteBatch> _committing = new(Batches);
    private int _handed; // ops of the writer thread's current batch handed on (failed or queued for I/O)
    private volatile bool _full;
    private long _bytesWritten, _writeErrors;

    public SsdWriter(TierContext ctx, IBlockDevice device, SsdJournal journal, BlockSeal seal, UInt128[] seals, int stripes)
    {
        _ctx = ctx;
        _device = device;
        _journal = journal;
        _seal = seal;
        _seals = seals;
        _stripes = stripes;
        _blockBytes = ctx.BlockBytes;
        _blocksPerRun = (int)Math.Clamp(RunBytes / device.ExtentBytes, 1, MaxBatch);
        for (int i = 0; i < Batches; i++) _spare.Push(new SsdWriteBatch(MaxBatch));
        int threads = DepthPerDirectory * stripes;
        _io = new ParallelWorker<SsdWriteRun>("flexkv-ssd-io", threads, 4 * threads, WriteRun,
            (_, e) => Warnings.Enqueue($"internal error after an SSD write: {e.GetType().Name}: {e.Message}"));
        _writer = new BatchWorker<SsdOp>("flexkv-ssd-write", 1 << 16, MaxBatch, RunBatch, FailBatch, AfterBatch);
    }

    /// <summary>Finished writes, for the engine (<see cref="ILowerTier.CompletedWrites"/>).</summary>
    public ConcurrentQueue<TierWriteDone> CompletedWrites { get; } = new();

    /// <summary>Problems for stats()["warnings"].</summary>
    public ConcurrentQueue<string> Warnings { get; } = new();

    /// <summary>Whether the disk was found full (writes stop until a reset).</summary>
    public bool Full => _full;

    /// <summary>Writes in flight per directory.</summary>
    public int Depth => DepthPerDirectory;

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>Operations queued and not yet taken by the writer thread (queue_depth).</summary>
    public int Count => _writer.Count;

    /// <summary>Queues an operation (scheduler thread); operations run in queue order.</summary>
    public void Add(in SsdOp op) => _writer.Add(op);

    /// <summary>A reset was asked for: new writes are taken again until the disk is found full anew.</summary>
    public void ClearFull() => _full = false;

    // ---- writer thread ----------------------------------------------------------------------

    private bool RunBatch(List<SsdOp> batch)
    {
        _handed = 0;
        int start = 0;
        while (start < batch.Count)
        {
            int end = start;
            while (end < batch.Count && batch[end].Kind != SsdOpKind.Reset) end++;
            Segment(batch, start, end);
            _handed = end;
            if (end < batch.Count)
            {
                ResetAll();
                _handed = ++end;
            }
            start = end;
        }
        return true;
    }

    // Removes first, on disk before any write of this segment is queued: the journal never names
    // a slot whose bytes are being replaced.
    private void Segment(List<SsdOp> batch, int start, int end)
    {
        bool journaled = true;
        lock (_lock)
        {
            for (int i = start; i < end; i++)
                if (batch[i].Kind == SsdOpKind.Remove) _journal.AppendRemove(batch[i].Slot);
            try
            {
                _journal.Flush();
            }
            catch (IOException e)
            {
                journaled = false; // the records stay queued and go with the next flush
                Warnings.Enqueue($"the SSD journal could not be written ({e.Message}); SSD writes fail until it can");
            }
        }
        SsdWriteBatch? b = null;
        for (int i = start; i < end; i++)
        {
            if (batch[i].Kind != SsdOpKind.Write) continue;
            if (!journaled)
            {
                Report(batch[i].Node, LibcMethods.Eio);
                continue;
            }
            b ??= TakeSpare();
            b.Add(batch[i]);
        }
        if (b is not null) Queue(b);
    }

    private SsdWriteBatch TakeSpare()
    {
        lock (_lock)
        {
            while (_spare.Count == 0) Monitor.Wait(_lock);
            SsdWriteBatch b = _spare.Pop();
            b.Clear();
            return b;
        }
    }

    // Cuts the batch into runs (one file, at most RunBytes), registers it for the in-order
    // commit, then hands the runs to the I/O threads.
    private void Queue(SsdWriteBatch b)
    {
        b.Sort(_stripes);
        int runs = 0;
        for (int i = 0; i < b.Count; i = NextRun(b, i)) runs++;
        b.PendingRuns = runs;
        lock (_lock) _uncommitted.Enqueue(b);
        for (int i = 0; i < b.Count;)
        {
            int j = NextRun(b, i);
            var run = new SsdWriteRun(b, i, j - i);
            if (!_io.Add(run)) EndRun(run, LibcMethods.Eio); // stopping
            i = j;
        }
    }

    private int NextRun(SsdWriteBatch b, int i)
    {
        int file = b.Slots[i] % _stripes;
        int j = i + 1;
        while (j < b.Count && j - i < _blocksPerRun && b.Slots[j] % _stripes == file) j++;
        return j;
    }

    // After every write queued before the reset: the journal and the seals forget every block.
    private void ResetAll()
    {
        lock (_lock)
        {
            while (_uncommitted.Count > 0) Monitor.Wait(_lock);
            Array.Clear(_seals);
            _full = false; // writes queued before the reset may have found the disk full again
            try
            {
                _journal.Compact(empty: true);
            }
            catch (Exception e)
            {
                // The old journal stays; its records are overwritten by later ones or name bytes its seals still check.
                Warnings.Enqueue($"the SSD journal could not be emptied on reset ({e.Message})");
            }
        }
    }

    // A batch that threw past the handling above: its writes not handed on yet fail.
    private void FailBatch(List<SsdOp> batch, Exception e)
    {
        for (int i = _handed; i < batch.Count; i++)
            if (batch[i].Kind == SsdOpKind.Write) Report(batch[i].Node, LibcMethods.Eio);
    }

    // Between batches: a journal grown by removes alone is compacted here (commits compact too).
    private void AfterBatch()
    {
        lock (_lock) CompactIfLarge();
        _ctx.WritesDone();
    }

    // ---- I/O threads ------------------------------------------------------------------------

    private void WriteRun(SsdWriteRun run)
    {
        int errno = 0;
        if (_full) errno = LibcMethods.Enospc; // queued before the disk was found full
        else
        {
            long started = EngineMetrics.Now();
            try
            {
                SealAndWrite(run);
            }
            catch (Exception)
            {
                errno = LibcMethods.Eio; // a device never throws for an I/O error: a bug, but only this run fails
            }
            _ctx.Metrics.Operation(TransferFlow.H2Ssd, EngineMetrics.Now() - started); // one run: its seals and its write
        }
        EndRun(run, errno);
    }

    private void SealAndWrite(SsdWriteRun run)
    {
        SsdWriteBatch b = run.Batch;
        for (int k = run.Start; k < run.Start + run.Count; k++)
        {
            ref readonly SsdOp op = ref b.Ops[k];
            nint buf = (nint)_ctx.CpuSlot(op.CpuSlot);
            b.Buffers[k] = buf;
            _seals[op.Slot] = _seal.Seal(op.Key, new ReadOnlySpan<byte>((void*)buf, (int)_blockBytes));
        }
        _device.Write(b.Slots.AsSpan(run.Start, run.Count), b.Buffers.AsSpan(run.Start, run.Count), _blockBytes,
            b.Errors.AsSpan(run.Start, run.Count));
    }

    private void EndRun(SsdWriteRun run, int errno)
    {
        SsdWriteBatch b = run.Batch;
        if (errno != 0) b.Errors.AsSpan(run.Start, run.Count).Fill(errno);
        if (Interlocked.Decrement(ref b.PendingRuns) == 0) Commit();
    }

    // Commits, in queue order, every batch whose runs all ended: journal records of the blocks
    // written, one flush, then the completions.
    private void Commit()
    {
        lock (_lock)
        {
            while (_uncommitted.Count > 0 && Volatile.Read(ref _uncommitted.Peek().PendingRuns) == 0)
            {
                SsdWriteBatch b = _uncommitted.Dequeue();
                for (int k = 0; k < b.Count; k++)
                {
                    ref readonly SsdOp op = ref b.Ops[k];
                    if (b.Errors[k] == 0) _journal.AppendPut(new SsdRecord(op.Slot, op.Key, op.Parent, op.HasParent, _seals[op.Slot]));
                }
                _committing.Add(b);
            }
            if (_committing.Count == 0) return;
            int journalError = 0;
            try
            {
                _journal.Flush();
            }
            catch (IOException)
            {
                journalError = LibcMethods.Eio; // without a journal record the block would not survive a restart
            }
            foreach (SsdWriteBatch b in _committing)
            {
                for (int k = 0; k < b.Count; k++)
                {
                    int errno = b.Errors[k];
                    Report(b.Ops[k].Node, errno != 0 ? errno : journalError);
                    if (errno == 0) Interlocked.Add(ref _bytesWritten, _blockBytes); // after the report: a test sees it applied
                    else Interlocked.Increment(ref _writeErrors);
                }
                _spare.Push(b);
            }
            _committing.Clear();
            Monitor.PulseAll(_lock); // spare batches, and a reset waiting for the commits
            CompactIfLarge();
        }
        _ctx.WritesDone();
    }

    // Under the lock: the file holds exactly the committed slot table being compacted.
    private void CompactIfLarge()
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
    }

    private void Report(int node, int errno)
    {
        if (errno == LibcMethods.Enospc && !_full)
        {
            // Disk full: SSD saves stop, everything else goes on (a reset may free room again).
            _full = true;
            Warnings.Enqueue("the SSD cache disk is full; blocks are no longer written to SSD");
        }
        CompletedWrites.Enqueue(new TierWriteDone(node, errno == 0,
            errno == 0 ? FailureReason.None : errno == LibcMethods.Enospc ? FailureReason.DiskFull : FailureReason.IoError));
    }

    /// <summary>Runs what is queued, then stops the threads (bounded); returns whether all ended.</summary>
    public bool Stop(int timeoutMs)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool ok = _writer.Stop(timeoutMs);
        return _io.Stop((int)Math.Max(0, timeoutMs - sw.ElapsedMilliseconds)) && ok;
    }
}

/// <summary>Blocks [Start, Start + Count) of a batch, in one file: one I/O thread's work.</summary>
internal readonly record struct SsdWriteRun(SsdWriteBatch Batch, int Start, int Count);
