using FlexKv.Core.Index;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;
using Microsoft.Extensions.ObjectPool;

namespace FlexKv.Core.Engine;

/// <summary>
/// Which blocks a request's match pins and a save writes: the walk over the index, the tiers'
/// lookups beyond the local prefix, the CPU slots promised to stage blocks found only in lower
/// tiers, and the blocks a finished request puts. Owned by the engine lock.
/// </summary>
internal sealed class BlockPlanner(BlockIndex index, TierSet tiers, EngineStats stats, ObjectPool<TransferTask> taskPool)
{
    private readonly ObjectPool<TransferTask> _taskPool = taskPool;
    private readonly BlockIndex _index = index;
    private readonly TierSet _tiers = tiers;
    private readonly EngineStats _stats = stats;
    private long _stagingPromised; // CPU slots promised to current matches for blocks only in lower tiers

    /// <summary>Why the last <see cref="Match"/> offered no more when the planner or the tiers know it (null: ask the index).</summary>
    public Metrics.NotOfferedReason? LastStop { get; private set; }

    // Matches blocks [computedBlocks, blocks) and pins them. A request asked about again (vLLM
    // retries waiting requests every step) keeps its pinned run: pinned blocks cannot have been
    // evicted, so only the blocks after it are looked up.
    public int Match(RequestState s, int blocks, int computedBlocks, int lookupBudgetMs)
    {
        s.EnsureMatchCapacity(blocks);
        long clock = _index.Tick();
        int start;
        if (s.PinnedCount > 0 && s.ComputedBlocks == computedBlocks && s.ComputedBlocks + s.PinnedCount <= blocks)
        {
            start = computedBlocks + s.PinnedCount;
            for (int i = computedBlocks; i < start; i++) _index.Touch(s.MatchNodes[i], clock);
        }
        else
        {
            ReleaseMatch(s);
            s.ComputedBlocks = computedBlocks;
            start = 0;
        }
        int local = start + _index.MatchReady(s.Sequence.Keys[start..blocks], s.MatchNodes.AsSpan(start), clock);
        for (int i = Math.Max(start, computedBlocks); i < local; i++) _index.Pin(s.MatchNodes[i]);
        int matched = _tiers.ExtendMatch(s, local, blocks, computedBlocks, lookupBudgetMs); // pinned as inserted
        if (matched == TierSet.MatchPending)
        {
            s.PinnedCount = Math.Max(0, local - computedBlocks); // kept for the next ask, which polls the answer
            return TierSet.MatchPending;
        }
        LastStop = _tiers.LookupStop;
        int fitted = FitStaging(s, computedBlocks, matched);
        if (fitted < matched) LastStop = Metrics.NotOfferedReason.PinnedLimit;
        matched = fitted;
        s.PinnedCount = Math.Max(0, matched - computedBlocks);
        return s.PinnedCount;
    }

    // Blocks only on SSD or in the remote store are loaded through CPU slots; offer no more of
    // them than the CPU tier can free now, less what other requests' matches were promised, so
    // a match never promises a load that would fail for lack of room.
    private int FitStaging(RequestState s, int computedBlocks, int matched)
    {
        _stagingPromised -= s.Staging;
        s.Staging = 0;
        if (!_tiers.Any) return matched;
        long available = (long)_index.Capacity - _index.PinnedCpuSlots - _stagingPromised;
        int staged = 0;
        for (int i = computedBlocks; i < matched; i++)
        {
            if (_index.StateOf(s.MatchNodes[i]) == BlockState.Ready) continue;
            if (++staged <= available) continue;
            for (int j = i; j < matched; j++) _index.Unpin(s.MatchNodes[j]);
            matched = i;
            staged--;
            break;
        }
        s.Staging = staged;
        _stagingPromised += staged;
        return matched;
    }

    public void ReleaseMatch(RequestState s)
    {
        for (int i = 0; i < s.PinnedCount; i++) _index.Unpin(s.MatchNodes[s.ComputedBlocks + i]);
        s.PinnedCount = 0;
        ReleaseStaging(s);
    }

    // The match's promise of CPU slots ends: the load took real slots, or the match went away.
    public void ReleaseStaging(RequestState s)
    {
        _stagingPromised -= s.Staging;
        s.Staging = 0;
    }

    // Plans the load of the request's first matched blocks into device blocks dst: each from its
    // CPU slot, or staged from the hottest tier holding it. The task takes over the pins of the
    // blocks it loads; the rest of the match is released.
    public TransferTask PlanLoad(RequestState s, ReadOnlySpan<int> dst)
    {
        TransferTask task = _taskPool.Get();
        task.Kind = TransferKind.Get;
        task.RequestId = s.Id;
        long clock = _index.Tick();
        for (int i = 0; i < dst.Length; i++)
        {
            int node = s.MatchNodes[s.ComputedBlocks + i];
            _index.SetExternalHash(node, s.HashOf(s.ComputedBlocks + i)); // a promoted block's KV event names it
            _tiers.AddLoad(task, dst[i], node, clock);
        }
        for (int i = dst.Length; i < s.PinnedCount; i++) _index.Unpin(s.MatchNodes[s.ComputedBlocks + i]);
        s.PinnedCount = 0;
        ReleaseStaging(s);
        return task;
    }

    // Plans the put of the request's full blocks the index lacks (blocks whose earlier write
    // failed are written again); returns null when every block is there already.
    public TransferTask? PlanPut(RequestState s, int blocks, ReadOnlySpan<int> blockIds)
    {
        if (blocks <= 0) return null;
        ReadOnlySpan<UInt128> keys = s.Sequence.Keys[..blocks];
        long clock = _index.Tick();
        TransferTask? task = null;
        int parent = -1;
        int last = -1;
        for (int i = 0; i < blocks; i++)
        {
            int id = _index.Lookup(keys[i], parent);
            if (id >= 0)
            {
                _index.Touch(id, clock);
                _index.SetExternalHash(id, s.HashOf(i)); // a block kept from before (restored) learns its vLLM hash
                last = id;
                // Ready or being written somewhere: nothing to do. In no tier (its write failed): redo it.
                if (_index.StateOf(id) == BlockState.Empty && _index.FirstReadableTier(id) < 0)
                {
                    if (!_index.TryRewrite(id, clock)) { _stats.BlocksDropped += blocks - i; break; }
                    (task ??= NewPut(s)).Add(blockIds[i], _index.SlotOf(id), id);
                }
                parent = id;
                continue;
            }
            id = _index.InsertWriting(keys[i], parent, clock);
            if (id < 0) { _stats.BlocksDropped += blocks - i; break; }
            _index.SetExternalHash(id, s.HashOf(i));
            (task ??= NewPut(s)).Add(blockIds[i], _index.SlotOf(id), id);
            parent = id;
            last = id;
        }
        _index.TouchDone(last);
        return task;
    }

    private TransferTask NewPut(RequestState s)
    {
        TransferTask task = _taskPool.Get();
        task.Kind = TransferKind.Put;
        task.RequestId = s.Id;
        return task;
    }
}
