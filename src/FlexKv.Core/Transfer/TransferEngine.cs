using System.Collections.Concurrent;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Transfer;

/// <summary>
/// Dedicated copy threads fed by one bounded queue of task slices (a BlockingCollection: an idle
/// thread is woken directly by the producer, without a thread-pool hop, which is what keeps
/// launch cheap). Launch never blocks: a slice the queue cannot take waits in a backlog that
/// <see cref="Pump"/> drains on the next call. A finished task is handed to <see cref="CompleteEagerly"/> (the engine applies it at once
/// when its lock is free) or else queued on <see cref="Completed"/> for the next engine call.
/// </summary>
internal sealed unsafe class TransferEngine : IDisposable
{
    private readonly BlockingCollection<CopyWork> _queue;
    private readonly Thread[] _threads;
    private readonly Queue<CopyWork> _backlog = new();
    private readonly object _signal = new();
    private readonly byte* _hostBase;
    private readonly long _hostStride;
    private volatile IDeviceTransport? _transport;
    private long _bytesMoved;
    private long _completions;
    private int _activeCopies;
    private long _epoch;          // transport replacements so far
    private long _drainedEpoch;   // no copy still uses a transport replaced at or before this epoch

    /// <summary>
    /// A task is split over several copy threads only in slices of at least this many bytes:
    /// waking a sleeping thread costs the scheduler's call 10–40 µs (more when the cores are
    /// busy), about what copying 1–2 MiB costs, so small loads and saves go to one thread.
    /// </summary>
    public long MinSliceBytes { get; init; } = 2L << 20;

    public TransferEngine(int threads, int queueCapacity, byte* hostBase, long hostStride)
    {
        _hostBase = hostBase;
        _hostStride = hostStride;
        _queue = new BlockingCollection<CopyWork>(new ConcurrentQueue<CopyWork>(), queueCapacity);
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(CopyLoop) { IsBackground = true, Name = $"flexkv-copy-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Finished tasks not applied yet, in completion order.</summary>
    public ConcurrentQueue<TransferTask> Completed { get; } = new();

    /// <summary>Applies a finished task on the copy thread if it can without waiting; false queues it.</summary>
    public Func<TransferTask, bool>? CompleteEagerly { get; set; }

    /// <summary>Tasks finished so far (a sequence number to wait on).</summary>
    private volatile bool _stopped;

    public long CompletionCount => Interlocked.Read(ref _completions);

    /// <summary>The transport in use, or null before registration.</summary>
    public IDeviceTransport? Transport
    {
        get => _transport;
        set
        {
            _transport = value;
            Interlocked.Increment(ref _epoch); // after the store: an epoch seen implies the store is seen
        }
    }

    /// <summary>Transport replacements so far: a transport replaced now is unused once <see cref="DrainedEpoch"/> reaches this.</summary>
    public long Epoch => Interlocked.Read(ref _epoch);

    /// <summary>
    /// Every transport replaced at or before this epoch is no longer used by any copy. Advanced by
    /// each copy that leaves no copy running, and by this call when none is running now.
    /// </summary>
    public long DrainedEpoch
    {
        get
        {
            long e = Interlocked.Read(ref _epoch);
            if (Interlocked.CompareExchange(ref _activeCopies, 0, 0) == 0) AdvanceDrained(e);
            return Interlocked.Read(ref _drainedEpoch);
        }
    }

    private void AdvanceDrained(long epoch)
    {
        long seen = Interlocked.Read(ref _drainedEpoch);
        while (epoch > seen)
        {
            long was = Interlocked.CompareExchange(ref _drainedEpoch, epoch, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    /// <summary>Bytes copied so far.</summary>
    public long BytesMoved => Interlocked.Read(ref _bytesMoved);

    /// <summary>Slices waiting for room in the channel.</summary>
    public int BacklogCount => _backlog.Count;

    /// <summary>Slices waiting for a copy thread (the channel and the backlog), read by the metrics reader as it is now.</summary>
    public int QueuedSlices => _queue.Count + _backlog.Count;

    public int ThreadCount => _threads.Length;

    /// <summary>Splits a task over the copy threads and queues it. Caller: the scheduler thread.</summary>
    public void Submit(TransferTask task)
    {
        int chunks = Prepare(task, out int per);
        for (int c = 0; c < chunks; c++)
        {
            var work = Slice(task, c, per);
            if (_backlog.Count > 0 || !_queue.TryAdd(work)) _backlog.Enqueue(work);
        }
    }

    /// <summary>
    /// Queues a task from another thread (the SSD reader), waiting for room rather than using
    /// the scheduler thread's backlog. Returns false when the engine is stopping.
    /// </summary>
    public bool SubmitBlocking(TransferTask task)
    {
        int chunks = Prepare(task, out int per);
        try
        {
            for (int c = 0; c < chunks; c++)
            {
                var work = Slice(task, c, per);
                _queue.Add(work);
            }
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // stopping: the queue takes no more work
        }
    }

    private int Prepare(TransferTask task, out int per)
    {
        task.State = TransferState.Launched;
        task.CopyStartTicks = System.Diagnostics.Stopwatch.GetTimestamp();
        long bytes = (long)task.Count * Math.Max(1, _hostStride);
        int chunks = (int)Math.Clamp(bytes / Math.Max(1, MinSliceBytes), 1, Math.Max(1, Math.Min(task.Count, _threads.Length)));
        per = Math.Max(1, (task.Count + chunks - 1) / chunks);
        chunks = Math.Max(1, (task.Count + per - 1) / per);
        Volatile.Write(ref task.PendingChunks, chunks);
        return chunks;
    }

    private static CopyWork Slice(TransferTask task, int c, int per)
    {
        int start = c * per;
        return new CopyWork(task, start, Math.Min(per, task.Count - start));
    }

    /// <summary>Moves backlog slices into the channel while it has room.</summary>
    public void Pump()
    {
        while (_backlog.Count > 0 && _queue.TryAdd(_backlog.Peek())) _backlog.Dequeue();
    }

    /// <summary>Waits until a task finished after <paramref name="seen"/> (a <see cref="CompletionCount"/>) or the timeout passes.</summary>
    public bool WaitForCompletion(long seen, int timeoutMs)
    {
        if (CompletionCount != seen) return true;
        lock (_signal)
        {
            if (CompletionCount != seen) return true;
            if (!_stopped) Monitor.Wait(_signal, timeoutMs); // Stop() pulses under this lock: no lost wake-up
            return CompletionCount != seen;
        }
    }

    /// <summary>Whether <see cref="Stop"/> was called (waiters are woken then).</summary>
    public bool IsStopped => _stopped;

    /// <summary>Waits (bounded) until no copy of <paramref name="task"/> is executing.</summary>
    public static bool WaitNotExecuting(TransferTask task, int timeoutMs)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var spin = new SpinWait();
        while (Volatile.Read(ref task.Executing) != 0)
        {
            if (sw.ElapsedMilliseconds > timeoutMs) return false;
            spin.SpinOnce();
        }
        return true;
    }

    private void CopyLoop()
    {
        while (_queue.TryTake(out CopyWork work, Timeout.Infinite)) Run(work);
    }

    private void Run(CopyWork work)
    {
        TransferTask task = work.Task;
        Interlocked.Increment(ref task.Executing);
        try
        {
            if (!task.IsCancelled) Copy(task, work.Start, work.Count);
        }
        finally
        {
            Interlocked.Decrement(ref task.Executing);
        }
        if (Interlocked.Decrement(ref task.PendingChunks) == 0)
        {
            task.CopyEndTicks = System.Diagnostics.Stopwatch.GetTimestamp();
            if (!(CompleteEagerly?.Invoke(task) ?? false)) Completed.Enqueue(task);
            Interlocked.Increment(ref _completions);
            lock (_signal) Monitor.PulseAll(_signal);
        }
    }

    // A copy counts itself running before it reads the transport (both full fences). When the
    // count drops to zero, every copy that could have read a transport replaced by then has
    // ended, and later copies read the newer one: transports replaced at or before the epoch
    // read just before that moment are unused (read after, a replacement racing the drop could
    // be counted drained while a copy that started in between still uses it).
    private void Copy(TransferTask task, int start, int count)
    {
        Interlocked.Increment(ref _activeCopies);
        try
        {
            CopyWith(_transport, task, start, count);
        }
        finally
        {
            long epoch = Interlocked.Read(ref _epoch);
            if (Interlocked.Decrement(ref _activeCopies) == 0) AdvanceDrained(epoch);
        }
    }

    private void CopyWith(IDeviceTransport? transport, TransferTask task, int start, int count)
    {
        Span<byte> failed = task.Failed.AsSpan(start, count);
        int failures;
        if (transport is null)
        {
            failed.Fill(1);
            failures = count;
        }
        else
        {
            var dir = task.Kind == TransferKind.Put ? TransferDirection.DeviceToHost : TransferDirection.HostToDevice;
            try
            {
                failures = transport.Copy(dir, task.DeviceBlocks.AsSpan(start, count), task.CpuSlots.AsSpan(start, count),
                    _hostBase, _hostStride, failed);
            }
            catch (Exception)
            {
                // A transport that throws loses the whole slice, never the process.
                failed.Fill(1);
                failures = count;
            }
            Interlocked.Add(ref _bytesMoved, (count - failures) * transport.Layout.BlockBytes);
        }
        if (failures > 0) Interlocked.Add(ref task.FailedCount, failures);
    }

    /// <summary>Stops accepting work and joins the threads (bounded); returns whether all stopped.</summary>
    public bool Stop(int timeoutMs)
    {
        lock (_signal)
        {
            _stopped = true;
            Monitor.PulseAll(_signal); // a caller blocked in WaitForCompletion returns now
        }
        _backlog.Clear();
        _queue.CompleteAdding();
        bool all = true;
        foreach (var t in _threads) all &= t.Join(timeoutMs);
        return all;
    }

    public void Dispose() => Stop(10_000);
}
