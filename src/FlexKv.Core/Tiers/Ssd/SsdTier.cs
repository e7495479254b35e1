using System.Collections.Concurrent;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The SSD tier's moving parts: one writer thread (CPU → SSD write-through, journal) and one
/// reader thread (SSD → CPU staging for gets, each block's seal verified for the key the get
/// asked for, so bytes written for another key never pass), each fed by a bounded queue
/// that wakes it directly (no thread-pool hop: a busy or starved pool must not stall I/O).
/// The index stays with the scheduler thread: finished writes come back on
/// <see cref="CompletedWrites"/>, and a get whose SSD blocks arrived goes on to the copy threads.
/// </summary>
internal sealed unsafe class SsdTier : IDisposable
{
    private const int Batch = 64;
    private readonly IBlockDevice _device;
    private readonly SsdJournal _journal;
    private readonly IDisposable? _directories;
    private readonly BlockSeal _seal;
    private readonly UInt128[] _seals; // per slot; a slot is read only while no write to it runs
    private readonly byte* _cpuBase;
    private readonly long _cpuStride;
    private readonly long _blockBytes;
    private readonly BlockingCollection<SsdOp> _writes = new(new ConcurrentQueue<SsdOp>(), 1 << 16);
    private readonly BlockingCollection<(TransferTask Task, int Index)> _reads = new(new ConcurrentQueue<(TransferTask, int)>(), 1 << 16);
    private readonly Thread _writer;
    private readonly Thread _reader;
    private readonly Func<TransferTask, bool> _readsDone;
    private long _bytesWritten, _bytesRead, _checksumFailures, _writeErrors, _readErrors;

    public SsdTier(IBlockDevice device, SsdJournal journal, IDisposable? directories, BlockSeal seal, byte* cpuBase, long cpuStride,
        long blockBytes, Func<TransferTask, bool> readsDone)
    {
        _seal = seal;
        _device = device;
        _journal = journal;
        _directories = directories;
        _cpuBase = cpuBase;
        _cpuStride = cpuStride;
        _blockBytes = blockBytes;
        _readsDone = readsDone;
        _seals = new UInt128[device.NumSlots];
        foreach (SsdRecord? r in journal.Slots)
            if (r is { } rec) _seals[rec.Slot] = rec.Seal;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "flexkv-ssd-write" };
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "flexkv-ssd-read" };
        _writer.Start();
        _reader.Start();
    }

    public IBlockDevice Device => _device;

    public SsdJournal Journal => _journal;

    public ConcurrentQueue<SsdWriteDone> CompletedWrites { get; } = new();

    /// <summary>Messages from the writer thread for the engine's warnings (applied with the completions).</summary>
    public ConcurrentQueue<string> Warnings { get; } = new();

    /// <summary>Called on the writer thread after a batch of writes ended (the engine applies them if it can).</summary>
    public Action? WritesDone { get; set; }

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long ChecksumFailures => Interlocked.Read(ref _checksumFailures);

    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    public long ReadErrors => Interlocked.Read(ref _readErrors);

    /// <summary>Queues an operation for the writer (scheduler thread; waits only if 65,536 are queued).</summary>
    public void Enqueue(in SsdOp op)
    {
        if (!_writes.IsAddingCompleted) _writes.Add(op);
    }

    /// <summary>Queues the SSD reads of a get; when all arrive the task goes to the copy threads.</summary>
    public void SubmitReads(TransferTask task)
    {
        task.State = TransferState.Launched;
        Volatile.Write(ref task.PendingSsdReads, task.SsdReadsTotal);
        for (int i = 0; i < task.Count; i++)
        {
            if (task.SsdSlots[i] < 0) continue;
            _reads.Add((task, i));
        }
    }

    private void WriteLoop()
    {
        var batch = new List<SsdOp>(Batch);
        while (_writes.TryTake(out SsdOp first, Timeout.Infinite))
        {
            batch.Add(first);
            while (batch.Count < Batch && _writes.TryTake(out SsdOp op)) batch.Add(op);
            try
            {
                RunWrites(batch);
            }
            catch (Exception)
            {
                // Never lose the thread: a failure here fails the writes of this batch.
                foreach (SsdOp op in batch)
                    if (op.Kind == SsdOpKind.Write) CompletedWrites.Enqueue(new SsdWriteDone(op.Node, op.Slot, 5));
            }
            batch.Clear();
            CompactJournalIfLarge();
            try
            {
                WritesDone?.Invoke();
            }
            catch (Exception)
            {
                // Left queued: the next engine call applies them.
            }
        }
    }

    // Removes are journaled before any write of the batch lands on disk, so the journal never
    // names a slot whose bytes are being replaced; Puts are journaled after their bytes landed.
    private void RunWrites(List<SsdOp> batch)
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
                end++;
            }
            start = end;
        }
    }

    // Between batches, so the journal on disk holds exactly the slot table being compacted.
    private void CompactJournalIfLarge()
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
        Span<int> slots = stackalloc int[writes];
        Span<nint> bufs = stackalloc nint[writes];
        Span<int> errors = stackalloc int[writes];
        Span<int> index = stackalloc int[writes];
        int w = 0;
        for (int i = start; i < end; i++)
            if (batch[i].Kind == SsdOpKind.Write) { slots[w] = batch[i].Slot; index[w] = i; w++; }
        SortBySlot(slots, index);
        for (int k = 0; k < writes; k++)
        {
            SsdOp op = batch[index[k]];
            bufs[k] = (nint)(_cpuBase + op.CpuSlot * _cpuStride);
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
            journalError = 5; // without a journal record the block would not survive a restart
        }
        for (int k = 0; k < writes; k++)
        {
            SsdOp op = batch[index[k]];
            CompletedWrites.Enqueue(new SsdWriteDone(op.Node, op.Slot, errors[k] != 0 ? errors[k] : journalError));
        }
    }

    private void ReadLoop()
    {
        var batch = new List<(TransferTask Task, int Index)>(Batch);
        while (_reads.TryTake(out var first, Timeout.Infinite))
        {
            batch.Add(first);
            while (batch.Count < Batch && _reads.TryTake(out var item)) batch.Add(item);
            try
            {
                RunReads(batch);
            }
            catch (Exception)
            {
                foreach (var (task, i) in batch) task.Failed[i] = 2;
            }
            foreach (var (task, _) in batch)
                if (Interlocked.Decrement(ref task.PendingSsdReads) == 0 && !_readsDone(task))
                    return; // stopping
            batch.Clear();
        }
    }

    private void RunReads(List<(TransferTask Task, int Index)> batch)
    {
        int n = batch.Count;
        Span<int> slots = stackalloc int[n];
        Span<int> index = stackalloc int[n];
        Span<nint> bufs = stackalloc nint[n];
        Span<int> errors = stackalloc int[n];
        for (int k = 0; k < n; k++) { slots[k] = batch[k].Task.SsdSlots[batch[k].Index]; index[k] = k; }
        SortBySlot(slots, index);
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[index[k]];
            bufs[k] = (nint)(_cpuBase + task.CpuSlots[i] * _cpuStride);
        }
        _device.Read(slots, bufs, _blockBytes, errors);
        for (int k = 0; k < n; k++)
        {
            var (task, i) = batch[index[k]];
            if (errors[k] != 0)
            {
                Interlocked.Increment(ref _readErrors);
                task.Failed[i] = 2; // 2: the SSD copy is bad and must leave the index
                continue;
            }
            if (!_seal.Verify(task.SsdKeys[i], new ReadOnlySpan<byte>((void*)bufs[k], (int)_blockBytes), _seals[slots[k]]))
            {
                Interlocked.Increment(ref _checksumFailures);
                task.Failed[i] = 2;
                continue;
            }
            Interlocked.Add(ref _bytesRead, _blockBytes);
        }
    }

    private static void SortBySlot(Span<int> slots, Span<int> index) => slots.Sort(index);

    /// <summary>Stops the threads (bounded wait) and closes files; returns whether both stopped.</summary>
    public bool Stop(int timeoutMs)
    {
        _writes.CompleteAdding();
        _reads.CompleteAdding();
        bool ok = _writer.Join(timeoutMs) & _reader.Join(timeoutMs);
        if (ok)
        {
            _journal.Dispose();
            _device.Dispose();
            _seal.Dispose();
            _directories?.Dispose();
        }
        return ok;
    }

    public void Dispose() => Stop(10_000);
}
