using System.Collections.Concurrent;

namespace FlexKv.Core.Tiers;

/// <summary>
/// A few dedicated threads taking items from one bounded queue, each handled on its own: what
/// keeps several blocking calls of a tier in flight at once (O_DIRECT writes, which a device
/// serves faster a few at a time). Dedicated threads, not the thread pool, for the reason
/// <see cref="BatchWorker{T}"/> gives. An item whose handling throws goes to <c>onError</c>
/// and the thread lives on.
/// </summary>
internal sealed class ParallelWorker<T>
{
    private readonly BlockingCollection<T> _queue;
    private readonly Action<T> _process;
    private readonly Action<T, Exception> _onError;
    private readonly Thread[] _threads;

    public ParallelWorker(string name, int threads, int capacity, Action<T> process, Action<T, Exception> onError)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _queue = new BlockingCollection<T>(new ConcurrentQueue<T>(), capacity);
        _process = process;
        _onError = onError;
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>Threads taking items.</summary>
    public int Threads => _threads.Length;

    /// <summary>Queues an item, waiting for room when the queue is full; false once stopping (the item was not taken).</summary>
    public bool Add(T item)
    {
        try
        {
            if (_queue.IsAddingCompleted) return false;
            _queue.Add(item);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // stopped between the check and the add
        }
    }

    private void Run()
    {
        foreach (T item in _queue.GetConsumingEnumerable())
        {
            try
            {
                _process(item);
            }
            catch (Exception e)
            {
                try { _onError(item, e); } catch (Exception) { } // never lose the thread
            }
        }
    }

    /// <summary>Takes no more items, lets the threads finish what is queued, and waits (bounded) for them; returns whether all ended.</summary>
    public bool Stop(int timeoutMs)
    {
        _queue.CompleteAdding();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool all = true;
        foreach (Thread t in _threads) all &= t.Join((int)Math.Max(0, timeoutMs - sw.ElapsedMilliseconds));
        return all;
    }
}
