using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;

namespace FlexKv.Core.Index;

/// <summary>
/// The control plane alone: hashing plus the block index over a block budget, with no bytes.
/// It answers "how much of this sequence is cached" and records "this sequence is now cached",
/// which is what trace replays and capacity planning need (FlexKV's cache engine has the same
/// role). Sequences are named by the caller so a match followed by an insert of the same, longer
/// sequence hashes each block once and re-walks none of the matched run. Not thread-safe.
/// </summary>
internal sealed class PrefixCache
{
    private readonly BlockHasher _hasher;
    private readonly BlockIndex _index;
    private readonly Dictionary<long, Sequence> _sequences = new();
    private readonly Stack<Sequence> _spare = new();
    private readonly Sequence _replay = new();

    /// <summary>Creates a cache of <paramref name="capacityBlocks"/> blocks of <paramref name="tokensPerBlock"/> tokens.</summary>
    public PrefixCache(int tokensPerBlock, int capacityBlocks)
    {
        if (tokensPerBlock is < 1 or > EngineOptionsValidator.MaxTokensPerBlock)
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'tokens_per_block': must be in 1..{EngineOptionsValidator.MaxTokensPerBlock}, got {tokensPerBlock}");
        if (capacityBlocks < 1) throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'num_cpu_blocks': must be > 0");
        _hasher = new BlockHasher(tokensPerBlock, CacheFingerprint.From(new EngineOptions { TokensPerBlock = tokensPerBlock, BlockBytes = 1 }).Value);
        _index = new BlockIndex(new SlotPool(capacityBlocks));
    }

    /// <summary>Tokens per block.</summary>
    public int TokensPerBlock => _hasher.TokensPerBlock;

    /// <summary>The underlying index (stats).</summary>
    public BlockIndex Index => _index;

    /// <summary>Cached leading tokens of sequence <paramref name="seq"/> (a multiple of the block size).</summary>
    public int Match(long seq, ReadOnlySpan<long> tokens) => MatchKeys(Get(seq, tokens));

    /// <summary>
    /// Stores the full blocks of <paramref name="tokens"/> not cached yet (evicting LRU leaves
    /// when full) and ends sequence <paramref name="seq"/>. Returns the number of blocks stored.
    /// </summary>
    public int Insert(long seq, ReadOnlySpan<long> tokens)
    {
        Sequence s = Get(seq, tokens);
        try
        {
            return InsertKeys(s);
        }
        finally
        {
            _sequences.Remove(seq);
            s.Reset();
            _spare.Push(s);
        }
    }

    /// <summary>
    /// Replays a whole trace in one call: for each sequence i, match its first
    /// <c>promptLengths[i]</c> tokens, then insert all <c>totalLengths[i]</c> tokens. Sequences
    /// are packed back to back in <paramref name="tokens"/>. Writes each match into
    /// <paramref name="matched"/> and returns the total matched tokens.
    /// </summary>
    public long Replay(ReadOnlySpan<long> tokens, ReadOnlySpan<long> promptLengths, ReadOnlySpan<long> totalLengths, Span<int> matched)
    {
        if (promptLengths.Length != totalLengths.Length || matched.Length < promptLengths.Length)
            throw new FlexKvException(FlexKvStatus.InvalidArgument, "prompt_lengths, total_lengths and matched must have the same length");
        long offset = 0, total = 0;
        Sequence s = _replay;
        for (int i = 0; i < promptLengths.Length; i++)
        {
            long p = promptLengths[i], t = totalLengths[i];
            if (p < 0 || t < p || t > tokens.Length - offset) // offset <= tokens.Length: no overflow
                throw new FlexKvException(FlexKvStatus.InvalidArgument,
                    $"sequence {i}: prompt length {p} and total length {t} do not fit the {tokens.Length - offset} tokens left " +
                    "in the token buffer (need 0 <= prompt <= total)");
            ReadOnlySpan<long> seq = tokens.Slice((int)offset, (int)t);
            s.Hash.Begin(_hasher.RootSeed);
            s.Hash.Extend(_hasher, seq[..(int)p]);
            matched[i] = MatchKeys(s);
            s.Hash.Extend(_hasher, seq);
            InsertKeys(s);
            s.Reset();
            total += matched[i];
            offset += t;
        }
        return total;
    }

    /// <summary>Forgets a sequence's hashing state without storing it.</summary>
    public bool Forget(long seq)
    {
        if (!_sequences.Remove(seq, out var s)) return false;
        s.Reset();
        _spare.Push(s);
        return true;
    }

    private int MatchKeys(Sequence s)
    {
        s.EnsureCapacity(s.Hash.Blocks);
        int n = _index.MatchReady(s.Hash.Keys, s.Nodes, _index.Tick());
        for (int i = 0; i < n; i++) s.Generations[i] = _index.GenerationOf(s.Nodes[i]);
        s.Matched = n;
        return n * TokensPerBlock;
    }

    private int InsertKeys(Sequence s)
    {
        ReadOnlySpan<UInt128> keys = s.Hash.Keys;
        long clock = _index.Tick();
        int parent = -1, i = 0;
        // The run found by this sequence's match is re-checked by generation, not looked up again.
        for (; i < s.Matched && _index.IsSame(s.Nodes[i], s.Generations[i], keys[i]); i++)
        {
            _index.Touch(s.Nodes[i], clock);
            parent = s.Nodes[i];
        }
        for (; i < keys.Length; i++)
        {
            int id = _index.Lookup(keys[i], parent);
            if (id < 0) break;
            _index.Touch(id, clock);
            parent = id;
        }
        int first = i;
        s.EnsureCapacity(keys.Length);
        for (; i < keys.Length; i++)
        {
            int id = _index.InsertWriting(keys[i], parent, clock);
            if (id < 0) break;
            s.Nodes[i] = id;
            parent = id;
        }
        // Completed last to first, so only the new leaf becomes an eviction candidate.
        for (int j = i - 1; j >= first; j--) _index.CompleteWrite(s.Nodes[j], ok: true);
        if (i == first) _index.TouchDone(parent);
        return i - first;
    }

    private Sequence Get(long seq, ReadOnlySpan<long> tokens)
    {
        if (!_sequences.TryGetValue(seq, out var s))
        {
            s = _spare.Count > 0 ? _spare.Pop() : new Sequence();
            s.Hash.Begin(_hasher.RootSeed);
            _sequences.Add(seq, s);
        }
        else if (tokens.Length < s.Hash.TokensSeen)
        {
            throw new FlexKvException(FlexKvStatus.InvalidArgument,
                $"sequence {seq} was {s.Hash.TokensSeen} tokens long and is now {tokens.Length}: a sequence may only grow");
        }
        s.Hash.Extend(_hasher, tokens);
        return s;
    }

    /// <summary>Hashing state plus the node run its last match found.</summary>
    private sealed class Sequence
    {
        public readonly HashedSequence Hash = new();
        public int[] Nodes = new int[256];
        public uint[] Generations = new uint[256];
        public int Matched;

        public void EnsureCapacity(int blocks)
        {
            if (Nodes.Length >= blocks) return;
            int n = Math.Max(blocks, Nodes.Length * 2);
            Nodes = new int[n];
            Generations = new uint[n];
        }

        public void Reset()
        {
            Hash.Reset();
            Matched = 0;
        }
    }
}
