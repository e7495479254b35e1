using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Devices;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Engine;

/// <summary>
/// The scheduler-side engine: one object per vLLM scheduler. Its methods are vLLM's connector
/// calls (match, update after alloc, request finished, launch, query finished, cancel, reset)
/// and return in microseconds; bytes move on the transfer threads and the tiers' threads.
/// Where a block comes from and goes to is the tiers' business (<see cref="TierSet"/>), how the
/// engine reaches vLLM's KV cache the devices' (<see cref="DeviceRegistry"/>).
///
/// Threads (docs/architecture.md has the whole map): every public method takes the engine lock,
/// so the engine is safe to call from any thread, and the index, the request table and the
/// tasks' planning state are only touched under it. Copy threads and tier threads complete
/// tasks through <see cref="TryCompleteNow"/> only when the lock is free, and never wait for it.
/// </summary>
internal sealed unsafe partial class KvEngine : IDisposable
{
    private const int CancelWaitMs = 10_000;
    // Removals the index remembers so a lookup can tell "evicted" from "never cached" (256 KiB).
    private const int RemovedKeysRemembered = 1 << 14;

    private readonly object _sync = new();
    private readonly EngineOptions _options;
    private readonly BlockHasher _hasher;
    private readonly CpuTier _cpu;
    private readonly BlockIndex _index;
    private readonly TransferEngine _transfer;
    private readonly TierSet _tiers;
    private readonly DeviceRegistry _devices;
    private readonly BlockPlanner _planner;
    private readonly TaskCompletion _completion;
    private readonly RequestTable _requests;
    private readonly ObjectPool<TransferTask> _taskPool = new DefaultObjectPool<TransferTask>(new TransferTask.PoolPolicy(), 1024);
    private readonly List<TransferTask> _planned = new();
    private readonly HashSet<TransferTask> _inFlight = new();
    private readonly FinishedReport _report = new();
    private readonly EngineStats _stats = new(); // the counters the contract calls increment
    private readonly Metrics.EngineMetrics _metrics = new(); // the metrics model, recorded by every thread
    private readonly EngineCounters _counters;
    private readonly OfferMetrics _offers;
    private readonly Events.KvEventLog _events;
    private bool _clearPending; // reset: nothing is offered or saved until the index is cleared
    private bool _shutDown;

    private KvEngine(EngineOptions options, IEnumerable<Func<TierContext, ILowerTier?>> tiers,
        Func<Tiers.Ssd.IBlockDevice, Tiers.Ssd.IBlockDevice>? wrapSsdDevice = null,
        Func<EngineOptions, UInt128, Tiers.Remote.IRemoteStore>? remoteFactory = null)
    {
        _options = options;
        Fingerprint = CacheFingerprint.From(options);
        _hasher = new BlockHasher(options.TokensPerBlock, Fingerprint.Value);
        _cpu = new CpuTier(options);
        _index = new BlockIndex(_cpu.Slots) { Owner = _sync };
        _index.RememberRemovals(RemovedKeysRemembered);
        _requests = new RequestTable(_sync);
        _transfer = new TransferEngine(options.TransferThreads, options.TransferQueueCapacity, _cpu.SlotAddress(0), _cpu.SlotStride);
        _transfer.CompleteEagerly = TryCompleteNow;
        _devices = new DeviceRegistry(_sync, _transfer, _cpu, options, Warnings, () => _inFlight.Count > 0 || _planned.Count > 0,
            ThrowIfShutDown);
        ILowerTier[] opened = [];
        try
        {
            opened = TierSet.Open(tiers, new TierContext
            {
                Options = options, Fingerprint = Fingerprint.Value, BlockBytes = _cpu.BlockBytes, CpuBase = _cpu.SlotAddress(0),
                CpuStride = _cpu.SlotStride, Warnings = Warnings, ReadsDone = task => _tiers!.AfterStage(task),
                WritesDone = TryApplyTierWritesNow, Metrics = _metrics, WrapSsdDevice = wrapSsdDevice, RemoteStoreFactory = remoteFactory,
            });
            lock (_sync) // restoring a tier fills the index, which only changes under the lock
                _tiers = new TierSet(opened, _index, _transfer.SubmitBlocking, _sync, _metrics, _cpu.BlockBytes);
            _tiers.Commit();
            _planner = new BlockPlanner(_index, _tiers, _stats, _taskPool);
            _completion = new TaskCompletion(_index, _tiers, _requests, _report, _stats, _taskPool, _metrics, _cpu.BlockBytes);
            _counters = new EngineCounters(_stats, _metrics, _transfer, _index, _cpu, _requests, _planned, _inFlight, _tiers);
            _offers = new OfferMetrics(_index, _tiers, _metrics, options.TokensPerBlock);
            _events = new Events.KvEventLog(_sync, _index, _requests, _metrics, ThrowIfShutDown, ApplyCompletions);
        }
        catch
        {
            _transfer.Stop(CancelWaitMs);
            foreach (ILowerTier t in opened)
                if (t.Stop(CancelWaitMs)) t.Abandon();
            _cpu.Dispose();
            throw;
        }
    }

    /// <summary>Creates an engine from validated options.</summary>
    public static KvEngine Create(EngineOptions options)
    {
        EngineOptionsValidator.Validate(options);
        return new KvEngine(options, TierRegistry.Default);
    }

    /// <summary>Creates an engine with the lower tiers <paramref name="tiers"/> opens (tests stack their own, wrap the SSD device to inject faults).</summary>
    internal static KvEngine Create(EngineOptions options, IEnumerable<Func<TierContext, ILowerTier?>> tiers,
        Func<EngineOptions, UInt128, Tiers.Remote.IRemoteStore>? remoteFactory = null,
        Func<Tiers.Ssd.IBlockDevice, Tiers.Ssd.IBlockDevice>? wrapSsdDevice = null)
    {
        EngineOptionsValidator.Validate(options);
        return new KvEngine(options, tiers, wrapSsdDevice, remoteFactory);
    }

    /// <summary>Creates an engine from a UTF-8 JSON configuration document; <paramref name="remoteFactory"/> builds the remote store when one is configured.</summary>
    public static KvEngine Create(ReadOnlySpan<byte> utf8Json, Func<EngineOptions, UInt128, Tiers.Remote.IRemoteStore>? remoteFactory = null) =>
        new(EngineOptionsJson.Parse(utf8Json), TierRegistry.Default, null, remoteFactory);

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

    /// <summary>Messages about degraded operation (e.g. no O_DIRECT, disk full), for the caller to log.</summary>
    public List<string> Warnings { get; } = new();

    /// <summary>For tests: the keys a token sequence hashes to, and the node and tier copies of a key.</summary>
    internal (BlockHasher Hasher, BlockIndex Index, TierSet Tiers) Internals => (_hasher, _index, _tiers);

    /// <summary>Why the SSD content of a previous run was not reused (null when it was, or no SSD tier).</summary>
    public string? SsdDiscardReason => _tiers.Find<Tiers.Ssd.SsdTier>()?.DiscardReason;

    /// <summary>
    /// How the engine reaches vLLM's KV cache (same-process host memory, another process's, CUDA,
    /// tensor-parallel ranks); registering takes the engine lock itself.
    /// </summary>
    public DeviceRegistry Devices => _devices;

    /// <summary>KV events for vLLM's <c>take_events</c> (off until enabled).</summary>
    public Events.KvEventLog Events => _events;

    // ---- launch, wait, stats, shutdown ----------------------------------------------------------

    /// <summary>Launches every planned task; returns how many were launched.</summary>
    public int LaunchTasks()
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions();
            _devices.DisposeRetiredIfIdle();
            int n = _planned.Count;
            foreach (TransferTask t in _planned)
            {
                _inFlight.Add(t);
                t.WasLaunched = true;
                if (t.Kind == TransferKind.Get) _tiers.Launch(t); // staged reads first, if any
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
            return _counters.Snapshot(Warnings);
        }
    }

    /// <summary>The counters as UTF-8 JSON.</summary>
    public byte[] StatsJson() => JsonSerializer.SerializeToUtf8Bytes(Stats(), EngineStatsJsonContext.Default.EngineStats);

    /// <summary>
    /// The numeric counters in <see cref="Metrics.StatsMetrics"/> order, written into
    /// <paramref name="values"/> (as many as fit); returns how many there are. Cheap enough for
    /// every scheduler step: no allocation, and not the engine lock (see <see cref="EngineCounters.Read"/>).
    /// </summary>
    public int ReadMetrics(Span<long> values)
    {
        ThrowIfShutDown();
        return _counters.Read(values);
    }

    /// <summary>
    /// Stops the engine: cancels pending work, joins the copy and tier threads and frees the CPU
    /// pool. Idempotent. If a thread does not stop in time the pool is leaked rather than freed
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
            stopped &= _tiers.Stop(CancelWaitMs);
            if (stopped)
            {
                _devices.DisposeTransports(); // e.g. close CUDA streams and IPC mappings, unpin the CPU pool
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
}
