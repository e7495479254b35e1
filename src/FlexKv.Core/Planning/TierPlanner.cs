using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Index;

namespace FlexKv.Core.Planning;

/// <summary>
/// The engine's control plane over a CPU tier and an optional SSD tier, without bytes: what a
/// trace would hit in each tier at given capacities. Each request makes the calls on a
/// <see cref="BlockIndex"/> that <see cref="Engine.KvEngine"/> makes when vLLM (nothing computed
/// on the GPU yet) drives it one request at a time and every transfer ends before the next
/// request: match the prompt's full blocks (CPU blocks, then SSD blocks to be staged through CPU
/// slots, cut where staging would need more slots than can be freed), load them, then save the
/// full blocks of all tokens but the last, written through to SSD, each tier evicting its own
/// least recently used leaves. The SSD writer is taken to be idle when a save ends, so it takes
/// the save's operations in batches of <see cref="WriterBatch"/> and finishes each batch's
/// writes in slot order, as <c>SsdTier</c> does. Memory grows with the distinct blocks kept,
/// never with the trace. Not thread-safe.
/// </summary>
internal sealed class TierPlanner
{
    /// <summary>Operations the SSD writer takes per batch (<c>SsdTier</c>'s batch).</summary>
    public const int WriterBatch = 64;
    private const byte FromCpu = 1, FromSsd = 2, NotLoaded = 3;

    private readonly BlockHasher _hasher;
    private readonly BlockIndex _index;
    private readonly bool _hasSsd;
    private const int SsdTier = 0; // the planner's only lower tier
    private UInt128[] _keys = new UInt128[1024];
    private int[] _nodes = new int[1024];
    private byte[] _from = new byte[1024];
    private int[] _put = new int[1024];
    private int[] _opSlots = new int[1024]; // the SSD writer's queue: slot written, or -1 for a removal
    private int[] _opNodes = new int[1024];
    private int _ops;
    private readonly int[] _batchSlots = new int[WriterBatch];
    private readonly int[] _batchNodes = new int[WriterBatch];

    /// <summary>
    /// A planner for blocks of <paramref name="tokensPerBlock"/> tokens with
    /// <paramref name="cpuBlocks"/> CPU slots and <paramref name="ssdBlocks"/> SSD slots (0: no SSD
    /// tier). Slots are only counted, so a huge capacity costs nothing until blocks fill it.
    /// </summary>
    public TierPlanner(int tokensPerBlock, long cpuBlocks, long ssdBlocks)
    {
        if (tokensPerBlock is < 1 or > EngineOptionsValidator.MaxTokensPerBlock)
            throw new FlexKvException(FlexKvStatus.InvalidArgument,
                $"tokens_per_block must be in 1..{EngineOptionsValidator.MaxTokensPerBlock}, got {tokensPerBlock}");
        if (cpuBlocks is < 1 or > int.MaxValue)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, $"cpu_blocks must be in 1..{int.MaxValue}, got {cpuBlocks}");
        if (ssdBlocks is < 0 or > int.MaxValue)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, $"ssd_blocks must be in 0..{int.MaxValue}, got {ssdBlocks}");
        _hasher = new BlockHasher(tokensPerBlock, CacheFingerprint.From(new EngineOptions { TokensPerBlock = tokensPerBlock, BlockBytes = 1 }).Value);
        _index = new BlockIndex(new SlotPool((int)cpuBlocks));
        _hasSsd = ssdBlocks > 0;
        if (_hasSsd)
        {
            _index.AddTier(new SlotPool((int)ssdBlocks));
            _index.OnTierSlotFreed(SsdTier, QueueRemoval);
        }
    }

    /// <summary>Tokens per block.</summary>
    public int TokensPerBlock => _hasher.TokensPerBlock;

    /// <summary>The index (levels and evictions).</summary>
    public BlockIndex Index => _index;

    /// <summary>SSD slots in use (0 without an SSD tier).</summary>
    public int SsdUsedSlots => _hasSsd ? _index.TierUsedSlots(SsdTier) : 0;

    /// <summary>SSD slots in total (0 without an SSD tier).</summary>
    public int SsdCapacity => _hasSsd ? _index.TierCapacity(SsdTier) : 0;

    /// <summary>Blocks evicted from the SSD tier.</summary>
    public long SsdEvictions => _hasSsd ? _index.TierEvictions(SsdTier) : 0;

    /// <summary>What the replays so far counted.</summary>
    public PlanTotals Totals { get; } = new();

    /// <summary>
    /// Replays requests packed back to back in <paramref name="tokens"/>: request i is the next
    /// <c>totalLengths[i]</c> tokens, its first <c>promptLengths[i]</c> the prompt. Writes the
    /// blocks each request loaded from CPU and from SSD and the matched blocks it could not load
    /// into the output spans (each empty, or one entry per request). Later calls continue the
    /// same cache, so a trace can come in chunks.
    /// </summary>
    public void Replay(ReadOnlySpan<long> tokens, ReadOnlySpan<long> promptLengths, ReadOnlySpan<long> totalLengths,
        Span<int> cpuHits, Span<int> ssdHits, Span<int> notLoaded)
    {
        int n = promptLengths.Length;
        if (totalLengths.Length != n)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "prompt_lengths and total_lengths must have the same length");
        if (!(cpuHits.IsEmpty || cpuHits.Length >= n) || !(ssdHits.IsEmpty || ssdHits.Length >= n) || !(notLoaded.IsEmpty || notLoaded.Length >= n))
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "each per-request output must be absent or hold one entry per request");
        // Checked before anything is replayed, so a rejected call leaves the cache as it was.
        long offset = 0;
        for (int i = 0; i < n; i++)
        {
            long p = promptLengths[i], t = totalLengths[i];
            if (p < 0 || t < p || t > tokens.Length - offset) // offset <= tokens.Length: no overflow
                throw new FlexKvException(FlexKvStatus.InvalidArgument,
                    $"request {i}: prompt length {p} and total length {t} do not fit the {tokens.Length - offset} tokens left " +
                    "in the token buffer (need 0 <= prompt <= total)");
            offset += t;
        }
        offset = 0;
        for (int i = 0; i < n; i++)
        {
            long p = promptLengths[i], t = totalLengths[i];
            Request(tokens.Slice((int)offset, (int)t), (int)p, out int cpu, out int ssd, out int lost);
            if (!cpuHits.IsEmpty) cpuHits[i] = cpu;
            if (!ssdHits.IsEmpty) ssdHits[i] = ssd;
            if (!notLoaded.IsEmpty) notLoaded[i] = lost;
            offset += t;
        }
    }

    /// <summary>
    /// Replays one request: <paramref name="sequence"/> is its prompt and output, the first
    /// <paramref name="promptTokens"/> the prompt. Returns the blocks loaded from CPU and from
    /// SSD and the matched blocks not loaded.
    /// </summary>
    public void ReplayOne(ReadOnlySpan<long> sequence, int promptTokens, out int cpu, out int ssd, out int lost)
    {
        if ((uint)promptTokens > (uint)sequence.Length)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, $"prompt of {promptTokens} tokens in a sequence of {sequence.Length}");
        Request(sequence, promptTokens, out cpu, out ssd, out lost);
    }

    private void Request(ReadOnlySpan<long> sequence, int promptTokens, out int cpu, out int ssd, out int lost)
    {
        int bs = _hasher.TokensPerBlock;
        int blocks = sequence.Length / bs;
        EnsureCapacity(blocks);
        // One chain over prompt and output: the prompt's full blocks are its first keys.
        _hasher.HashBlocks(sequence, 0, _hasher.RootSeed, _keys);
        int promptBlocks = promptTokens / bs;
        int matched = promptBlocks > 0 ? Match(promptBlocks) : 0;
        cpu = ssd = lost = 0;
        if (matched > 0) Load(matched, out cpu, out ssd, out lost);
        // request_finished saves the full blocks of all tokens but the last (its KV is never computed).
        int save = Math.Max(sequence.Length - 1, 0) / bs;
        if (save > 0) Save(save, Math.Min(matched, save));
        Totals.Requests++;
        Totals.PromptTokens += promptTokens;
        Totals.TotalTokens += sequence.Length;
        Totals.QueriedBlocks += promptBlocks;
        Totals.CpuHitBlocks += cpu;
        Totals.SsdHitBlocks += ssd;
        Totals.FailedLoadBlocks += lost;
    }

    // get_num_new_matched_tokens: the ready run, pinned; with an SSD tier cut where its blocks
    // would need more CPU slots than are not pinned (KvEngine.FitStaging; nothing else is promised here).
    private int Match(int blocks)
    {
        long clock = _index.Tick();
        int n = _index.MatchReady(_keys.AsSpan(0, blocks), _nodes, clock);
        for (int i = 0; i < n; i++) _index.Pin(_nodes[i]);
        if (!_hasSsd) return n;
        long available = (long)_index.Capacity - _index.PinnedCpuSlots;
        int staged = 0;
        for (int i = 0; i < n; i++)
        {
            if (_index.StateOf(_nodes[i]) == BlockState.Ready) continue;
            if (++staged <= available) continue;
            for (int j = i; j < n; j++) _index.Unpin(_nodes[j]);
            Totals.StagingCutBlocks += n - i;
            return i;
        }
        return n;
    }

    // update_state_after_alloc plans the load (an SSD block gets a CPU slot it is read into), and
    // the load ends: staged blocks become CPU copies, then the load's pins go, in block order.
    private void Load(int matched, out int cpu, out int ssd, out int lost)
    {
        cpu = ssd = lost = 0;
        long clock = _index.Tick();
        for (int i = 0; i < matched; i++)
        {
            int node = _nodes[i];
            if (_index.StateOf(node) == BlockState.Ready) { _from[i] = FromCpu; cpu++; }
            else if (_index.TierCopyOf(node, SsdTier) == TierCopy.Ready && _index.TryPromote(node, clock, out _)) { _from[i] = FromSsd; ssd++; }
            else { _from[i] = NotLoaded; lost++; }
        }
        for (int i = 0; i < matched; i++)
        {
            if (_from[i] == FromSsd) _index.CompleteWrite(_nodes[i], ok: true);
            _index.Unpin(_nodes[i]);
        }
    }

    // request_finished plans the put (KvEngine.PlanPut), the put ends (blocks ready in order),
    // then its blocks are written through to SSD. PlanPut looks every block up; lookups only
    // read, so two shortcuts give the same calls otherwise: the loaded run is still where the
    // match found it (pinned until just now, and nothing evicted since), and past the first
    // block the index lacks no later one can be there (it holds a block only with its parent).
    private void Save(int blocks, int loaded)
    {
        long clock = _index.Tick();
        int parent = -1, last = -1, count = 0;
        bool missed = false;
        for (int i = 0; i < blocks; i++)
        {
            int id = i < loaded ? _nodes[i] : missed ? -1 : _index.Lookup(_keys[i], parent);
            if (id >= 0)
            {
                _index.Touch(id, clock);
                last = id;
                // In no tier (kept only for its children): written again.
                if (_index.StateOf(id) == BlockState.Empty && _index.FirstReadableTier(id) < 0)
                {
                    if (!_index.TryRewrite(id, clock)) { Totals.DroppedBlocks += blocks - i; break; }
                    _put[count++] = id;
                }
                parent = id;
                continue;
            }
            missed = true;
            id = _index.InsertWriting(_keys[i], parent, clock);
            if (id < 0) { Totals.DroppedBlocks += blocks - i; break; }
            _put[count++] = id;
            parent = id;
            last = id;
        }
        _index.TouchDone(last);
        for (int k = 0; k < count; k++) _index.CompleteWrite(_put[k], ok: true);
        Totals.SavedBlocks += count;
        if (_hasSsd) WriteThrough(count);
    }

    private void WriteThrough(int count)
    {
        _ops = 0;
        for (int k = 0; k < count; k++)
        {
            int node = _put[k];
            if (_index.StateOf(node) != BlockState.Ready || !_index.TryBeginTierWrite(node, SsdTier, out int slot)) continue;
            QueueOp(slot, node);
        }
        // The writer takes up to WriterBatch queued operations (removals of evicted slots
        // included) and ends that batch's writes in slot order.
        for (int start = 0; start < _ops; start += WriterBatch)
        {
            int end = Math.Min(start + WriterBatch, _ops), w = 0;
            for (int k = start; k < end; k++)
            {
                if (_opSlots[k] < 0) continue;
                _batchSlots[w] = _opSlots[k];
                _batchNodes[w++] = _opNodes[k];
            }
            _batchSlots.AsSpan(0, w).Sort(_batchNodes.AsSpan(0, w));
            for (int k = 0; k < w; k++) _index.CompleteTierWrite(_batchNodes[k], SsdTier, ok: true);
            Totals.SsdWrittenBlocks += w;
        }
        _ops = 0;
    }

    private void QueueRemoval(int slot) => QueueOp(-1, -1);

    private void QueueOp(int slot, int node)
    {
        if (_ops == _opSlots.Length)
        {
            Array.Resize(ref _opSlots, _ops * 2);
            Array.Resize(ref _opNodes, _ops * 2);
        }
        _opSlots[_ops] = slot;
        _opNodes[_ops++] = node;
    }

    // Sized for the longest request seen: arrays grow, never shrink, so replays allocate nothing.
    private void EnsureCapacity(int blocks)
    {
        if (_keys.Length >= blocks) return;
        int n = Math.Max(blocks, _keys.Length * 2);
        _keys = new UInt128[n];
        _nodes = new int[n];
        _from = new byte[n];
        _put = new int[n];
    }
}
