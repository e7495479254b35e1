using System.Collections.Concurrent;

namespace FlexKv.Core.Tiers;

/// <summary>
/// One dedicated thread fed by a bounded queue, taking what is queued in batches of up to
/// <c>maxBatch</c> items: the shape of every tier's reader and writer (batching is what lets a
/// device or a store take many blocks per call). A dedicated thread, not the thread pool: a busy
/// or starved pool must not stall I/O. A batch that throws fails through <c>onError</c> and the
/// thread lives on. The thread owns the batch list; items are handed over by the queue.
/// </summary>
internal sealed class BatchWorker<T> : IDisposable
{
    private readonly BlockingCollection<T> _queue;
    private readonly int _maxBatch;
    private readonly Func<List<T>, bool> _process;
    private readonly Action<List<T>, Exception> _onError;
    private readonly Action? _afterBatch;
    private readonly Thread _thread;

    /// <summary>
    /// Starts the thread: <paramref name="process"/> handles a batch (false ends the thread: the
    /// engine is stopping), <paramref name="onError"/> fails a batch whose processing threw, and
    /// <paramref name="afterBatch"/> runs after each batch (e.g. tell the engine writes finished).
    /// </summary>
    public BatchWorker(string name, int capacity, int maxBatch, Func<List<T>, bool> process, Action<List<T>, Exception> onError,
        Action? afterBatch = null)
    {
        _queue = new BlockingCollection<T>(new ConcurrentQueue<T>(), capacity);
        _maxBatch = maxBatch;
        _process = process;
        _onError = onError;
        _afterBatch = afterBatch;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Items waiting.</summary>
    public int Count => _queue.Count;

    /// <summary>Queues an item, waiting for room when the queue is full; dropped once stopping.</summary>
    public void Add(T item)
    {
        try
        {
            if (!_queue.IsAddingCompleted) _queue.Add(item);
        }
        catch (InvalidOperationException)
        {
            // Stopped between the check and the add.
        }
    }

    /// <summary>Queues an item unless the queue is full or stopping.</summary>
    public bool TryAdd(T item)
    {
        try
        {
            return !_queue.IsAddingCompleted && _queue.TryAdd(item);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private void Run()
    {
        var batch = new List<T>(_maxBatch);
        while (_queue.TryTake(out T? first, Timeout.Infinite))
        {
            batch.Add(first);
            while (batch.Count < _maxBatch && _queue.TryTake(out T? item)) batch.Add(item);
            bool go;
            try
            {
                go = _process(batch);
            }
            catch (Exception e)
            {
                try { _onError(batch, e); } catch (Exception) { } // never lose the thread
                go = true;
            }
            batch.Clear();
            try { _afterBatch?.Invoke(); } catch (Exception) { } // left for the engine's next call
            if (!go) return;
        }
    }

    /// <summary>Stops taking items and waits (bounded) for the thread; returns whether it ended.</summary>
    public bool Stop(int timeoutMs)
    {
        _queue.CompleteAdding();
        return _thread.Join(timeoutMs);
    }

    public void Dispose() => Stop(10_000);
}
