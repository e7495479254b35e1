using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers.Remote;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

public sealed unsafe partial class KvEngine
{
    private const int MaxRemoteLookupBlocks = 4096;
    private readonly Func<EngineOptions, UInt128, IRemoteStore>? _remoteFactory;
    private RemoteTier? _remote;
    private readonly LookupBreaker _breaker = new();
    private int _remoteWritesPending;
    private long _remoteMatchedBlocks, _remoteLookups, _remoteLookupsLate;

    // Connects the remote tier when configured. Redis being down is not an error: the store
    // reconnects in the background and until then lookups miss and writes are dropped.
    private void OpenRemote()
    {
        string url = EngineOptionsValidator.ResolveRemoteUrl(_options);
        if (url.Length == 0) return;
        if (_remoteFactory is null)
            ThrowHelper.Throw(FlexKvStatus.NotSupported, "configuration key 'remote_url': this build of the engine has no remote tier");
        IRemoteStore store = _remoteFactory(_options, Fingerprint.Value);
        if (!store.IsConnected) Warnings.Add($"the remote store ({store.Description}) is not reachable yet; retrying in the background");
        long queued = Math.Max(1, (long)_options.RemoteMaxInflightMb * (1 << 20) / BlockBytes);
        _remote = new RemoteTier(store, _cpu.SlotAddress(0), _cpu.SlotStride, (int)BlockBytes, (int)Math.Min(queued, 1 << 20),
            _transfer.SubmitBlocking) { WritesDone = TryApplyTierWritesNow };
    }

    /// <summary>What a lookup returns while the remote store's answer is awaited (vLLM: "ask me again later").</summary>
    internal const int MatchPending = -1;

    // After the local prefix: ask the store about the blocks beyond it. The question goes out in
    // one pipelined round trip and the answer is polled by the request's later lookups (vLLM asks
    // again every step while the request waits), so no scheduler step ever waits on the store.
    // An answer later than remote_lookup_budget_ms is a miss and opens the breaker; blocks the
    // store holds join the match (pinned) and are loaded through CPU slots.
    private int MatchRemote(RequestState s, int local, int blocks, int computedBlocks)
    {
        // When vLLM holds the first blocks and the local index does not (evicted here, or never
        // saved), the store is asked about the blocks after vLLM's hit: they join as a detached run.
        int from = Math.Max(local, computedBlocks);
        if (_remote is null || from >= blocks)
        {
            DropLookup(s);
            return local;
        }
        int parent = local >= from && from > 0 ? s.MatchNodes[from - 1] : -1;
        long now = Environment.TickCount64;
        if (s.RemoteLookup is { } pending)
        {
            if (pending.Start != from) DropLookup(s); // the local run changed under it: the answer does not fit
            else if (pending.Answer.IsCompleted)
            {
                s.RemoteLookup = null;
                // Seen within the budget, the store is well; seen later, the answer is still
                // good (it came before this poll) but says nothing about the store now.
                if (now - pending.StartedMs < _options.RemoteLookupBudgetMs || pending.Probe) _breaker.Answered();
                return InsertRemoteRun(s, from, parent, pending.Answer.Present, local);
            }
            else if (now - pending.StartedMs < _options.RemoteLookupBudgetMs) return MatchPending;
            else
            {
                s.RemoteLookup = null;
                _remoteLookupsLate++;
                _breaker.Late(now, pending.Probe);
                return local;
            }
        }
        if (from < s.RemoteAskedUpTo || !_remote.Store.IsConnected || _options.RemoteLookupBudgetMs == 0) return local;
        if (!_breaker.TryStart(now, out bool probe)) return local;
        int ask = Math.Min(blocks - from, MaxRemoteLookupBlocks);
        _remoteLookups++;
        s.RemoteAskedUpTo = from + ask;
        IRemoteLookup answer = _remote.Store.BeginCountPresent(s.Sequence.Keys.Slice(from, ask));
        if (answer.IsCompleted)
        {
            _breaker.Answered();
            return InsertRemoteRun(s, from, parent, answer.Present, local);
        }
        s.RemoteLookup = new PendingLookup(answer, from, ask, now, probe);
        return MatchPending;
    }

    // The store holds blocks [from, from + present): they join the match, pinned as inserted
    // (under parent, or as a detached run after vLLM's own hit). Returns where the match ends.
    private int InsertRemoteRun(RequestState s, int from, int parent, int present, int local)
    {
        if (present == 0) return local;
        long clock = _index.Tick();
        for (int i = from; i < from + present; i++)
        {
            int id = _index.InsertRemote(s.Sequence.Keys[i], parent, clock);
            if (id < 0) return i == from ? local : i; // known locally but not readable (e.g. being written): stop here
            s.MatchNodes[i] = id;
            parent = id;
            _remoteMatchedBlocks++;
        }
        return from + present;
    }

    // A lookup nobody will poll (the request finished, was matched anew, or the cache was reset).
    private void DropLookup(RequestState s)
    {
        if (s.RemoteLookup is { Probe: true }) _breaker.Abandoned();
        s.RemoteLookup = null;
    }

    private bool AddLoadFromRemote(TransferTask task, int deviceBlock, int node, long clock)
    {
        if (_remote is null || !_index.IsRemote(node) || !_index.TryPromoteRemote(node, clock, out int slot)) return false;
        task.Add(deviceBlock, slot, node);
        task.FromRemoteStore(_index.KeyOf(node));
        return true;
    }

    // Where a get goes after its SSD blocks (if any) arrived: the remote blocks, then the copy.
    private bool AfterSsdReads(TransferTask task)
    {
        if (task.RemoteReadsTotal > 0 && _remote is not null)
        {
            _remote.SubmitReads(task);
            return true;
        }
        return _transfer.SubmitBlocking(task);
    }

    private void WriteThroughRemote(TransferTask put)
    {
        if (_remote is null) return;
        for (int i = 0; i < put.Count; i++)
        {
            int node = put.Nodes[i];
            if (_index.StateOf(node) != BlockState.Ready) continue;
            _index.Pin(node); // the CPU copy is the source until the write ends
            if (_remote.TryEnqueueWrite(new RemoteWrite(node, _index.SlotOf(node), _index.KeyOf(node)))) _remoteWritesPending++;
            else _index.Unpin(node);
        }
    }

    private void ApplyRemoteCompletions()
    {
        if (_remote is null) return;
        while (_remote.CompletedWrites.TryDequeue(out RemoteWrite w))
        {
            _remoteWritesPending--;
            _index.Unpin(w.Node);
        }
    }

    private void WaitRemoteWrites()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (_remoteWritesPending > 0 && sw.ElapsedMilliseconds < CancelWaitMs)
        {
            ApplyRemoteCompletions();
            if (_remoteWritesPending > 0) Thread.Sleep(1);
        }
    }

    private void SnapshotRemoteStats(EngineStats s)
    {
        s.RemoteEnabled = _remote is not null;
        if (_remote is null) return;
        s.RemoteConnected = _remote.Store.IsConnected;
        s.RemotePipelineDepth = _remote.PipelineDepth;
        s.RemoteStoreWriteMs = Math.Round(_remote.StoreWriteMs, 3);
        s.RemoteStoreReadMs = Math.Round(_remote.StoreReadMs, 3);
        s.RemoteLookups = _remoteLookups;
        s.RemoteLookupsLate = _remoteLookupsLate;
        s.RemoteBreakerOpen = _breaker.IsOpen(Environment.TickCount64);
        s.RemoteMatchedBlocks = _remoteMatchedBlocks;
        s.RemoteBlocksWritten = _remote.BlocksWritten;
        s.RemoteBlocksRead = _remote.BlocksRead;
        s.RemoteReadsMissing = _remote.ReadsMissing;
        s.RemoteReadsCorrupt = _remote.ReadsCorrupt;
        s.RemoteReadsUnavailable = _remote.ReadsUnavailable;
        s.RemoteWritesDropped = _remote.WritesDropped;
        s.RemoteWritesPending = _remoteWritesPending;
    }
}
