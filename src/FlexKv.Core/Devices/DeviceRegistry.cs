using FlexKv.Core.Config;
using FlexKv.Core.Devices.Cuda;
using FlexKv.Core.Errors;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices;

/// <summary>
/// How the engine reaches vLLM's KV cache: host memory of this process, GPU memory of this
/// process, host memory of worker processes (process_vm_*), or GPU memory of worker processes
/// (CUDA IPC), one transport per tensor-parallel rank. The registry installs the transport the
/// copy threads use; a replaced one is released once no copy can still be using it (see
/// <see cref="TransferEngine.DrainedEpoch"/>). Shares the engine lock: every change happens
/// under it, on whichever thread registers (vLLM's scheduler, or the registration server's).
/// </summary>
internal sealed unsafe class DeviceRegistry
{
    private readonly object _sync;
    private readonly TransferEngine _transfer;
    private readonly CpuTier _cpu;
    private readonly EngineOptions _options;
    private readonly List<string> _warnings;
    private readonly Func<bool> _busy;
    private readonly Action _throwIfShutDown;
    private IDeviceTransport?[]? _ranks;
    private readonly List<(IDisposable Transport, long Epoch)> _retired = new();
    private readonly object _pinSync = new(); // pinning a large pool takes seconds: not under the engine lock
    private PinnedHostMemory? _pinned;

    /// <summary>
    /// A registry over the engine's lock (<paramref name="sync"/>) and copy threads;
    /// <paramref name="busy"/> says whether transfers are planned or running (a single cache is not
    /// replaced under them), <paramref name="throwIfShutDown"/> throws once the engine is shut down.
    /// </summary>
    public DeviceRegistry(object sync, TransferEngine transfer, CpuTier cpu, EngineOptions options, List<string> warnings,
        Func<bool> busy, Action throwIfShutDown)
    {
        _sync = sync;
        _transfer = transfer;
        _cpu = cpu;
        _options = options;
        _warnings = warnings;
        _busy = busy;
        _throwIfShutDown = throwIfShutDown;
    }

    /// <summary>Registers the KV cache the same-process host path copies to and from.</summary>
    public void RegisterKvCaches(ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks) =>
        RegisterTransport(new HostMemoryTransport(KvLayout.Create(layers, numDeviceBlocks, _cpu.BlockBytes)));

    /// <summary>
    /// Registers a KV cache in GPU memory of this process (device pointers) on CUDA device
    /// <paramref name="deviceOrdinal"/>: copies go through the CUDA driver and the CPU pool is
    /// page-locked. Without a driver or GPU this is a <see cref="FlexKvStatus.NotSupported"/> error.
    /// </summary>
    public void RegisterCudaKvCaches(ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks, int deviceOrdinal)
    {
        KvLayout layout = KvLayout.Create(layers, numDeviceBlocks, _cpu.BlockBytes);
        var device = new CudaDevice(deviceOrdinal);
        try
        {
            PinCpuPool(deviceOrdinal);
        }
        catch
        {
            device.Dispose();
            throw;
        }
        var transport = new CudaTransport(device, layout, batchCopy: _options.CudaBatchCopy);
        try
        {
            RegisterTransport(transport);
        }
        catch
        {
            transport.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Registers a KV cache in host memory of another process (<paramref name="pid"/>), reached with
    /// process_vm_readv/writev. The kernel must allow it (the engine is the worker's ancestor, or
    /// ptrace_scope permits); otherwise a <see cref="FlexKvStatus.NotSupported"/> error names the setting.
    /// </summary>
    public void RegisterProcessKvCaches(int pid, ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks) =>
        RegisterTransport(new ProcessVmTransport(pid, KvLayout.Create(layers, numDeviceBlocks, _cpu.BlockBytes)));

    /// <summary>
    /// Registers rank <paramref name="rank"/> of <paramref name="worldSize"/> tensor-parallel workers,
    /// each a process holding its shard in host memory (reached with process_vm_*). A block's CPU
    /// slot holds every rank's part; the cache is usable once all ranks registered (then returns
    /// true). A rank registered again replaces the earlier one (a restarted worker); its shard must
    /// have the shape of the other ranks'.
    /// </summary>
    public bool RegisterRankKvCaches(int rank, int worldSize, int pid, ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks)
    {
        long share = RankShare(rank, worldSize);
        return InstallRank(rank, worldSize, new ProcessVmTransport(pid, KvLayout.Create(layers, numDeviceBlocks, share)));
    }

    /// <summary>
    /// Same as <see cref="RegisterRankKvCaches"/> for a shard in GPU memory of the worker: each
    /// layer's base is replaced by the mapping of <paramref name="handles"/>[i] (CUDA IPC) on the
    /// GPU the handle names.
    /// </summary>
    public bool RegisterRankCudaKvCaches(int rank, int worldSize, ReadOnlySpan<CudaIpcDesc> handles,
        ReadOnlySpan<KvLayerDesc> layers, int numDeviceBlocks)
    {
        long share = RankShare(rank, worldSize);
        if (handles.Length != layers.Length)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"{handles.Length} IPC handles for {layers.Length} layers");
        KvLayerDesc[] mapped = layers.ToArray();
        for (int i = 0; i < mapped.Length; i++) mapped[i].Base = 1; // placeholders until mapped: the shape is checked first
        KvLayout.Create(mapped, numDeviceBlocks, share);
        CudaDevice device = CudaIpcMapping.OpenDevice(handles[0]);
        CudaTransport transport;
        CudaIpcMapping? mapping = null;
        try
        {
            mapping = new CudaIpcMapping(device, handles, mapped);
            PinCpuPool(device.Ordinal);
            transport = new CudaTransport(device, KvLayout.Create(mapped, numDeviceBlocks, share), mapping, _options.CudaBatchCopy);
        }
        catch
        {
            mapping?.Dispose();
            device.Dispose();
            throw;
        }
        return InstallRank(rank, worldSize, transport); // disposes the transport if refused
    }

    /// <summary>
    /// A worker exited: its rank is missing again, so nothing is offered or loaded until it
    /// registers anew; transfers already running on it fail on their own.
    /// </summary>
    public void DeregisterRank(int rank)
    {
        lock (_sync)
        {
            _throwIfShutDown();
            if (_ranks is null || (uint)rank >= (uint)_ranks.Length || _ranks[rank] is null)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"rank {rank} is not registered");
            IDeviceTransport gone = _ranks[rank]!;
            _ranks[rank] = null;
            _transfer.Transport = null;
            Retire(gone);
        }
    }

    /// <summary>Installs another transport (CUDA, cross-process, or a fault-injecting one in tests).</summary>
    public void RegisterTransport(IDeviceTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        lock (_sync)
        {
            _throwIfShutDown();
            if (transport.Layout.BlockBytes != _cpu.BlockBytes)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"transport blocks are {transport.Layout.BlockBytes} bytes, engine blocks {_cpu.BlockBytes}");
            if (_busy())
                ThrowHelper.Throw(FlexKvStatus.InvalidState, "register_kv_caches: transfers are pending; register before serving requests");
            IDeviceTransport? old = _transfer.Transport;
            IDeviceTransport?[]? oldRanks = _ranks;
            _ranks = null;
            _transfer.Transport = transport;
            if (old is not null) Retire(old);
            foreach (var r in oldRanks ?? []) if (r is not null) Retire(r);
        }
    }

    /// <summary>More workers than any tensor x pipeline layout on one machine has (each rank costs a table entry).</summary>
    internal const int MaxWorldSize = 1024;

    private long RankShare(int rank, int worldSize)
    {
        if (worldSize is < 1 or > MaxWorldSize)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"world_size must be in 1..{MaxWorldSize}, got {worldSize}");
        if (rank < 0 || rank >= worldSize)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"rank {rank} is outside 0..{worldSize - 1}");
        long share = _cpu.BlockBytes / worldSize;
        if (share * worldSize != _cpu.BlockBytes)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"block_bytes {_cpu.BlockBytes} does not split over {worldSize} ranks");
        return share;
    }

    private bool InstallRank(int rank, int worldSize, IDeviceTransport transport)
    {
        lock (_sync)
        {
            try
            {
                _throwIfShutDown();
                if (_ranks is null)
                {
                    IDeviceTransport? single = _transfer.Transport;
                    _transfer.Transport = null;
                    if (single is not null) Retire(single);
                    _ranks = new IDeviceTransport[worldSize];
                }
                else if (_ranks.Length != worldSize)
                {
                    ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                        $"rank {rank} says the world size is {worldSize}, the ranks registered so far {_ranks.Length}");
                }
                CheckSameShape(rank, transport.Layout);
            }
            catch
            {
                (transport as IDisposable)?.Dispose();
                throw;
            }
            IDeviceTransport? previous = _ranks[rank];
            _ranks[rank] = transport;
            bool complete = Array.IndexOf(_ranks, null) < 0;
            // Every copy reads the transport once per batch, so swapping it under running
            // transfers is safe: a restarted rank rejoins without draining the engine.
            if (complete) _transfer.Transport = new RankedTransport((IDeviceTransport[])_ranks.Clone());
            if (previous is not null) Retire(previous); // after the swap: its epoch covers the copies using it
            return complete;
        }
    }

    /// <summary>Tensor-parallel shards split heads evenly, so every rank's layout has the same shape.</summary>
    private void CheckSameShape(int rank, KvLayout layout)
    {
        for (int r = 0; r < _ranks!.Length; r++)
        {
            if (r == rank || _ranks[r] is not { } other) continue;
            KvLayout o = other.Layout;
            if (o.NumDeviceBlocks != layout.NumDeviceBlocks)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"rank {rank} has {layout.NumDeviceBlocks} blocks, rank {r} {o.NumDeviceBlocks}");
            if (o.Layers.Length != layout.Layers.Length)
                ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"rank {rank} registers {layout.Layers.Length} layers, rank {r} {o.Layers.Length}");
            for (int l = 0; l < o.Layers.Length; l++)
            {
                if (o.Layers[l].SpanBytes != layout.Layers[l].SpanBytes || o.Layers[l].NumKv != layout.Layers[l].NumKv)
                    ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                        $"layer {l} of rank {rank} ({layout.Layers[l].NumKv} x {layout.Layers[l].SpanBytes} bytes per block) differs from " +
                        $"rank {r}'s ({o.Layers[l].NumKv} x {o.Layers[l].SpanBytes})");
            }
            return; // the registered ranks already agree with each other
        }
    }

    private void PinCpuPool(int ordinal)
    {
        lock (_pinSync)
        {
            _throwIfShutDown();
            _pinned ??= new PinnedHostMemory(ordinal, _cpu.SlotAddress(0), _cpu.ReservedBytes);
        }
    }

    /// <summary>Keeps a replaced transport until no copy uses it. Call after the swap that dropped it.</summary>
    private void Retire(IDeviceTransport transport)
    {
        if (transport is IDisposable d) _retired.Add((d, _transfer.Epoch));
    }

    /// <summary>
    /// Frees replaced transports once no copy can still use them: a restarted worker's old GPU
    /// memory stays allocated for as long as this process keeps it mapped. Caller holds the lock.
    /// </summary>
    public void DisposeRetiredIfIdle()
    {
        if (_retired.Count == 0) return;
        long drained = _transfer.DrainedEpoch;
        var ready = new List<IDisposable>();
        _retired.RemoveAll(r =>
        {
            if (r.Epoch > drained) return false;
            ready.Add(r.Transport);
            return true;
        });
        DisposeAll(ready);
    }

    /// <summary>Called at shutdown once the copy threads stopped.</summary>
    public void DisposeTransports()
    {
        var all = _retired.Select(r => r.Transport).ToList();
        _retired.Clear();
        if (_transfer.Transport is IDisposable current) all.Add(current);
        if (_ranks is not null)
            foreach (var r in _ranks) if (r is IDisposable d && !all.Contains(d)) all.Add(d);
        DisposeAll(all);
        lock (_pinSync)
        {
            try
            {
                _pinned?.Dispose();
            }
            catch (Exception e) when (e is FlexKvException or DllNotFoundException)
            {
                _warnings.Add($"unpinning the CPU pool failed: {e.Message}");
            }
        }
    }

    private void DisposeAll(List<IDisposable> items)
    {
        foreach (IDisposable d in items)
        {
            try
            {
                d.Dispose();
            }
            catch (Exception e)
            {
                _warnings.Add($"releasing a replaced KV cache registration failed: {e.GetType().Name}: {e.Message}"); // never fails shutdown
            }
        }
        items.Clear();
    }
}
