using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;
using FlexKv.Core.Tiers.Ssd;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

public sealed unsafe partial class KvEngine
{
    private const int Enospc = 28;
    private readonly Func<IBlockDevice, IBlockDevice>? _wrapSsdDevice;
    private SsdTier? _ssd;
    private DirectFileDevice? _ssdFiles;
    private long _ssdOrphans;
    private bool _ssdFull;
    private int _ssdWritesPending;
    private long _ssdRestored;

    /// <summary>Messages about degraded operation (e.g. no O_DIRECT), for the caller to log.</summary>
    public List<string> Warnings { get; } = new();

    /// <summary>Why the SSD content of a previous run was not reused (null when it was, or no SSD tier).</summary>
    public string? SsdDiscardReason { get; private set; }

    // Opens the SSD tier when configured and restores the blocks its journal lists. Nothing on
    // disk is cut or rewritten yet (see CommitSsd), and what was allocated goes if create fails.
    private void OpenSsd()
    {
        if (!(_options.SsdCacheGb > 0)) return;
        var dirs = new SsdDirectories(_options.SsdCacheDir);
        DirectFileDevice? files = null;
        try
        {
            int slots = SsdSpace.Plan(_options.SsdCacheGb, BlockBytes, dirs.Paths);
            files = new DirectFileDevice(dirs.Paths, slots, BlockBytes, Warnings.Add, _options.SsdDirectIo);
            IBlockDevice device = _wrapSsdDevice is null ? files : _wrapSsdDevice(files);
            var journal = new SsdJournal(Path.Combine(dirs.Paths[0], "flexkv-journal.bin"), Fingerprint.Value, BlockBytes,
                dirs.Paths.Length, device.NumSlots);
            SsdDiscardReason = journal.DiscardReason;
            var pool = new SlotPool(device.NumSlots);
            _index.AttachSsd(pool);
            Restore(journal, pool);
            WarnAboutLostBlocks(journal, dirs.Paths[0]);
            _ssdFiles = files;
            _ssd = new SsdTier(device, journal, dirs, new BlockSeal(Fingerprint.Value, _options.Secret), _cpu.SlotAddress(0),
                _cpu.SlotStride, BlockBytes, AfterSsdReads);
            _index.SsdSlotFreed = slot => _ssd.Enqueue(new SsdOp(SsdOpKind.Remove, -1, slot, -1, 0, 0, false));
            _ssd.WritesDone = TryApplyTierWritesNow;
        }
        catch
        {
            files?.Abandon();
            dirs.Dispose();
            throw;
        }
    }

    // Once create cannot fail any more: the journal is rewritten as restored and files larger
    // than ssd_cache_gb now asks for are cut (journal first, so it never names a cut slot).
    private void CommitSsd()
    {
        if (_ssd is null) return;
        _ssd.Journal.Start();
        _ssdFiles!.TrimToSize();
    }

    // Every reason a block of the previous run is not reused reaches stats()["warnings"] (and the log).
    private void WarnAboutLostBlocks(SsdJournal journal, string dir)
    {
        if (!_options.SsdPersist) return; // starting empty was asked for
        if (journal.DiscardReason is { } why)
            Warnings.Add($"the SSD cache in '{dir}' was not reused ({why}); it starts empty");
        if (journal.DroppedRecords > 0)
            Warnings.Add($"{journal.DroppedRecords} torn records at the end of the SSD journal in '{dir}' were dropped " +
                         "(a crash or kill while writing); the blocks they named are not reused");
        if (journal.BeyondSizeBlocks > 0)
            Warnings.Add($"{journal.BeyondSizeBlocks} SSD blocks beyond the size ssd_cache_gb now gives were dropped");
        if (_ssdOrphans > 0)
            Warnings.Add($"{_ssdOrphans} SSD blocks whose parent block is not on SSD were dropped (they cannot be matched)");
    }

    // Rebuilds the index from the journal, parents first. A block whose parent is not on SSD
    // cannot be reached by a match, so it is dropped and its slot reused (so is a parent loop).
    private void Restore(SsdJournal journal, SlotPool pool)
    {
        var byKey = new Dictionary<UInt128, SsdRecord>();
        if (_options.SsdPersist)
            foreach (SsdRecord? r in journal.Slots)
                if (r is { } rec) byKey.TryAdd(rec.Key, rec);
        var used = new bool[pool.Capacity];
        var kept = new List<SsdRecord>(byKey.Count);
        var chain = new Stack<SsdRecord>();
        var onChain = new HashSet<UInt128>();
        var dead = new HashSet<UInt128>(); // keys known not to reach a root: each record is walked about once
        long clock = _index.Tick();
        foreach (SsdRecord rec in byKey.Values)
        {
            chain.Clear();
            onChain.Clear();
            SsdRecord cur = rec;
            int parent = -1;
            bool orphan = false;
            while (_index.Lookup(cur.Key) < 0)
            {
                // A key seen twice on one walk: the parents loop (a forged journal) and reach no root.
                if (dead.Contains(cur.Key) || !onChain.Add(cur.Key)) { orphan = true; break; }
                chain.Push(cur);
                if (!cur.HasParent) break;
                parent = _index.Lookup(cur.Parent);
                if (parent >= 0) break;
                if (!byKey.TryGetValue(cur.Parent, out cur)) { orphan = true; break; }
            }
            if (orphan)
            {
                foreach (SsdRecord c in chain) dead.Add(c.Key);
                continue;
            }
            while (chain.Count > 0)
            {
                SsdRecord r = chain.Pop();
                parent = _index.InsertFromSsd(r.Key, r.HasParent ? parent : -1, r.Slot, clock);
                used[r.Slot] = true;
                kept.Add(r);
            }
        }
        pool.MarkUsed(used);
        _index.RefreshCandidates();
        _ssdRestored = kept.Count;
        if (_options.SsdPersist) _ssdOrphans = byKey.Count - kept.Count;
        journal.Keep(kept);
    }

    // After a put: blocks the SSD lacks are written there in the background (write-through),
    // and every block goes to the remote store.
    private void WriteThrough(TransferTask put)
    {
        WriteThroughRemote(put);
        if (_ssd is null || _ssdFull) return;
        for (int i = 0; i < put.Count; i++)
        {
            int node = put.Nodes[i];
            if (_index.StateOf(node) != BlockState.Ready || !_index.TryBeginSsdWrite(node, out int ssdSlot)) continue;
            int parent = _index.ParentOf(node);
            _ssd.Enqueue(new SsdOp(SsdOpKind.Write, node, ssdSlot, _index.SlotOf(node), _index.KeyOf(node),
                parent >= 0 ? _index.KeyOf(parent) : 0, parent >= 0));
            _ssdWritesPending++;
        }
    }

    // On an SSD or remote writer thread: written blocks release their CPU pins at once when the
    // engine lock is free (more CPU slots can be evicted), else at the next engine call.
    private void TryApplyTierWritesNow()
    {
        if (!Monitor.TryEnter(_sync)) return;
        try
        {
            if (_shutDown) return;
            ApplySsdCompletions();
            ApplyRemoteCompletions();
        }
        finally
        {
            Monitor.Exit(_sync);
        }
    }

    private void ApplySsdCompletions()
    {
        if (_ssd is null) return;
        while (_ssd.Warnings.TryDequeue(out string? w)) Warnings.Add(w);
        while (_ssd.CompletedWrites.TryDequeue(out SsdWriteDone done))
        {
            _ssdWritesPending--;
            _index.CompleteSsdWrite(done.Node, done.Error == 0);
            if (done.Error == Enospc && !_ssdFull)
            {
                // Disk full: SSD saves stop, everything else goes on.
                _ssdFull = true;
                Warnings.Add("the SSD cache disk is full; blocks are no longer written to SSD");
            }
        }
    }

    // Loads: a block only on SSD gets a CPU slot (it is cached there too) and is read into it first.
    private void AddLoad(TransferTask task, int deviceBlock, int node, long clock)
    {
        if (_index.StateOf(node) == BlockState.Ready)
        {
            task.Add(deviceBlock, _index.SlotOf(node), node);
            return;
        }
        if (_index.SsdStateOf(node) == SsdState.Ready && _index.TryPromote(node, clock, out int slot))
        {
            task.Add(deviceBlock, slot, node);
            task.FromSsd(_index.SsdSlotOf(node), _index.KeyOf(node));
            return;
        }
        if (AddLoadFromRemote(task, deviceBlock, node, clock)) return;
        // Being loaded from SSD for another request right now, or no CPU slot free: vLLM
        // recomputes this block (reported as a load error).
        task.Add(deviceBlock, -1, node);
        task.Failed[task.Count - 1] = 1;
    }

    // A get's promoted blocks become CPU copies, unless their read failed; a bad SSD copy goes.
    private void CompleteStagedLoad(TransferTask task, int i, bool launched)
    {
        int node = task.Nodes[i];
        bool ok = launched && task.Failed[i] == 0;
        _index.CompleteWrite(node, ok);
        if (task.Failed[i] == 2) _index.DropSsd(node);
        if (task.Failed[i] == 3) _index.ClearRemote(node);
    }

    private void WaitSsdWrites()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (_ssdWritesPending > 0)
        {
            ApplySsdCompletions();
            if (_ssdWritesPending == 0) break;
            if (sw.ElapsedMilliseconds > CancelWaitMs)
                ThrowHelper.Throw(FlexKvStatus.Internal, $"{_ssdWritesPending} SSD writes did not finish within {CancelWaitMs} ms");
            Thread.Sleep(1);
        }
    }

    private void SnapshotSsdStats(EngineStats s)
    {
        s.SsdBlocksUsed = _index.SsdUsedSlots;
        s.SsdBlocksTotal = _index.SsdCapacity;
        s.SsdEvictions = _index.SsdEvictions;
        s.SsdRestoredBlocks = _ssdRestored;
        s.SsdFull = _ssdFull;
        s.SsdWritesPending = _ssdWritesPending;
        if (_ssd is null) return;
        s.SsdBlocksWritten = _ssd.BytesWritten / BlockBytes;
        s.SsdBlocksRead = _ssd.BytesRead / BlockBytes;
        s.SsdChecksumFailures = _ssd.ChecksumFailures;
        s.SsdWriteErrors = _ssd.WriteErrors;
        s.SsdReadErrors = _ssd.ReadErrors;
        s.SsdDirect = _ssd.Device.Direct;
    }
}
