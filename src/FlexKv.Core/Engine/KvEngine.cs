using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Engine;

/// <summary>
/// The scheduler-side engine: one object per vLLM scheduler. Its methods mirror the connector
/// calls (match, update after alloc, request finished, launch, query finished, cancel, reset)
/// and return in microseconds; bytes move on the transfer threads. Every public method takes
/// one lock, so the engine is safe to call from any thread, and the index is only touched under it.
/// </summary>
public sealed unsafe partial class KvEngine : IDisposable
{
    private const int RecentlyFinishedLimit = 65_536;
    private const int CancelWaitMs = 10_000;

    private readonly object _sync = new();
    private readonly EngineOptions _options;
    private readonly BlockHasher _hasher;
    private readonly CpuTier _cpu;
    private readonly BlockIndex _index;
    private readonly TransferEngine _transfer;
    private readonly Dictionary<string, RequestState> _requests = new();
    private readonly Dictionary<string, RequestState>.AlternateLookup<ReadOnlySpan<char>> _requestsBySpan;
    private readonly HashSet<string> _recentlyFinished = new();
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _recentlyFinishedBySpan;
    private readonly Queue<string> _recentlyFinishedOrder = new();
    private readonly Stack<RequestState> _spareStates = new();
    private readonly ObjectPool<TransferTask> _taskPool = new DefaultObjectPool<TransferTask>(new TransferTask.PoolPolicy(), 1024);
    private readonly List<TransferTask> _planned = new();
    private readonly HashSet<TransferTask> _inFlight = new();
    private bool _clearPending;    // reset: nothing is offered or saved until the index is cleared
    private long _stagingPromised; // CPU slots promised to current matches for blocks on SSD or remote only
    private readonly FinishedReport _report = new();
    private readonly EngineStats _stats = new();
    private readonly EngineStats _metricsStats = new(); // ReadMetrics' scratch, under _metricsSync
    private readonly object _metricsSync = new();
    private bool _shutDown;

    private KvEngine(EngineOptions options, Func<Tiers.Ssd.IBlockDevice, Tiers.Ssd.IBlockDevice>? wrapSsdDevice = null,
        Func<EngineOptions, UInt128, Tiers.Remote.IRemoteStore>? remoteFactory = null)
    {
        _wrapSsdDevice = wrapSsdDevice;
        _remoteFactory = remoteFactory;
        _options = options;
        Fingerprint = CacheFingerprint.From(options);
        _hasher = new BlockHasher(options.TokensPerBlock, Fingerprint.Value);
        _cpu = new CpuTier(options);
        _index = new BlockIndex(_cpu.Slots);
        _transfer = new TransferEngine(options.TransferThreads, options.TransferQueueCapacity, _cpu.SlotAddress(0), _cpu.SlotStride);
        _requestsBySpan = _requests.GetAlternateLookup<ReadOnlySpan<char>>();
        _recentlyFinishedBySpan = _recentlyFinished.GetAlternateLookup<ReadOnlySpan<char>>();
        _transfer.CompleteEagerly = TryCompleteNow;
        try
        {
            OpenSsd();
            OpenRemote();
            CommitSsd();
        }
        catch
        {
            _transfer.Stop(CancelWaitMs);
            if (_ssd?.Stop(CancelWaitMs) == true) _ssdFiles?.Abandon();
            _remote?.Stop(CancelWaitMs);
            _cpu.Dispose();
            throw;
        }
    }

    /// <summary>Creates an engine from validated options.</summary>
    public static KvEngine Create(EngineOptions options)
    {
        EngineOptionsValidator.Validate(options);
        return new KvEngine(options);
    }

    /// <summary>Creates an engine whose SSD device is wrapped (fault injection in tests).</summary>
    internal static KvEngine Create(EngineOptions options, Func<Tiers.Ssd.IBlockDevice, Tiers.Ssd.IBlockDevice> wrapSsdDevice)
    {
        EngineOptionsValidator.Validate(options);
        return new KvEngine(options, wrapSsdDevice);
    }

    /// <summary>Creates an engine from a UTF-8 JSON configuration document; <paramref name="remoteFactory"/> builds the remote store when one is configured.</summary>
    public static KvEngine Create(ReadOnlySpan<byte> utf8Json, Func<EngineOptions, UInt128, Tiers.Remote.IRemoteStore>? remoteFactory = null) =>
        new(EngineOptionsJson.Parse(utf8Json), null, remoteFactory);

    /// <summary>The engine's options.</summary>
    public EngineOptions Options => _options;

    /// <summary>The cache fingerprint every key is seeded with.</summary>
    public CacheFingerprint Fingerprint { get; }

    /// <summary>Tokens per block.</summary>
    public int TokensPerBlock => _options.TokensPerBlock;

    /// <summary>Bytes per block.</summary>
    public long BlockBytes => _cpu.BlockBytes;

    /// <summary>Whether a KV cache is registered.</summary>
    public bool IsRegistered => _transfer.Transport is not null;

    /// <summary>Launches every planned task; returns how many were launched.</summary>
    public int LaunchTasks()
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions();
            DisposeRetiredIfIdle();
            int n = _planned.Count;
            foreach (TransferTask t in _planned)
            {
                _inFlight.Add(t);
                t.WasLaunched = true;
                if (t.SsdReadsTotal > 0) _ssd!.SubmitReads(t);
                else if (t.RemoteReadsTotal > 0) _remote!.SubmitReads(t);
                else _transfer.Submit(t);
            }
            _planned.Clear();
            _transfer.Pump();
            return n;
        }
    }

    /// <summary>
    /// Blocks the caller until some task finishes or the timeout passes (for non-vLLM callers);
    /// a shutdown wakes it with a ShutDown error.
    /// </summary>
    public bool WaitForCompletion(int timeoutMs)
    {
        long seen;
        lock (_sync)
        {
            ThrowIfShutDown();
            _transfer.Pump();
            ApplyCompletions();
            if (_report.EntryCount > 0) return true;
            seen = _transfer.CompletionCount;
        }
        bool done = _transfer.WaitForCompletion(seen, timeoutMs);
        if (_transfer.IsStopped) ThrowHelper.ShutDown(); // woken by Shutdown: the caller must stop waiting
        return done;
    }

    /// <summary>A snapshot of the counters.</summary>
    public EngineStats Stats()
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions();
            return SnapshotStats();
        }
    }

    /// <summary>The counters as UTF-8 JSON.</summary>
    public byte[] StatsJson() => JsonSerializer.SerializeToUtf8Bytes(Stats(), EngineStatsJsonContext.Default.EngineStats);

    /// <summary>
    /// The numeric counters in <see cref="Metrics.StatsMetrics"/> order, written into
    /// <paramref name="values"/> (as many as fit); returns how many there are. A scheduler
    /// reads this every step, so it allocates nothing and does not take the engine lock (a copy
    /// thread may hold it for a while completing a large transfer): each value is read as it
    /// is now, which is all a counter snapshot needs. Completions not applied yet count from
    /// the read after the next query.
    /// </summary>
    public int ReadMetrics(Span<long> values)
    {
        lock (_metricsSync)
        {
            ThrowIfShutDown();
            _metricsStats.CopyCountersFrom(_stats);
            RefreshStats(_metricsStats);
            return Metrics.StatsMetrics.Fill(_metricsStats, values);
        }
    }

    private EngineStats SnapshotStats()
    {
        RefreshStats(_stats);
        _stats.Warnings = Warnings;
        return _stats.Clone();
    }

    /// <summary>Writes the levels and the counters kept by other components into <paramref name="s"/>.</summary>
    private void RefreshStats(EngineStats s)
    {
        s.BytesMoved = _transfer.BytesMoved;
        s.Evictions = _index.Evictions;
        s.CpuBlocksUsed = _index.UsedSlots;
        s.CpuBlocksTotal = _index.Capacity;
        s.BlockBytes = _cpu.BlockBytes;
        s.CpuReservedBytes = _cpu.ReservedBytes;
        s.PinnedBlocks = _index.TotalPins;
        s.PinnedCpuBlocks = _index.PinnedCpuSlots;
        s.ActiveRequests = _requests.Count;
        s.TasksPlanned = _planned.Count;
        s.TasksInFlight = _inFlight.Count;
        s.Registered = _transfer.Transport is not null;
        SnapshotSsdStats(s);
        SnapshotRemoteStats(s);
    }

    /// <summary>
    /// Stops the engine: cancels pending work, joins the copy threads and frees the CPU pool.
    /// Idempotent. If a copy thread does not stop in time the pool is leaked rather than freed
    /// under it.
    /// </summary>
    public void Shutdown()
    {
        lock (_sync)
        {
            if (_shutDown) return;
            _shutDown = true;
            foreach (TransferTask t in _planned) t.Cancel();
            foreach (TransferTask t in _inFlight) t.Cancel();
            bool stopped = _transfer.Stop(CancelWaitMs);
            if (_ssd is not null) stopped &= _ssd.Stop(CancelWaitMs);
            if (_remote is not null) stopped &= _remote.Stop(CancelWaitMs);
            if (stopped)
            {
                DisposeTransports(); // e.g. close CUDA streams and IPC mappings, unpin the CPU pool
                _cpu.Dispose();
            }
        }
    }

    /// <summary>Same as <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();

    private void ThrowIfShutDown()
    {
        if (_shutDown) ThrowHelper.ShutDown();
    }

    private RequestState? Find(ReadOnlySpan<char> id) => _requestsBySpan.TryGetValue(id, out var s) ? s : null;

    private RequestState Add(ReadOnlySpan<char> id, ReadOnlySpan<byte> utf8Namespace)
    {
        var s = _spareStates.Count > 0 ? _spareStates.Pop() : new RequestState();
        s.Id = id.ToString();
        s.Sequence.Begin(_hasher.SeedFor(utf8Namespace));
        _requests.Add(s.Id, s);
        _recentlyFinishedBySpan.Remove(id);
        return s;
    }

    private void Forget(RequestState s)
    {
        _requests.Remove(s.Id);
        if (_recentlyFinished.Add(s.Id))
        {
            _recentlyFinishedOrder.Enqueue(s.Id);
            if (_recentlyFinishedOrder.Count > RecentlyFinishedLimit) _recentlyFinished.Remove(_recentlyFinishedOrder.Dequeue());
        }
        s.Reset();
        _spareStates.Push(s);
    }
}
