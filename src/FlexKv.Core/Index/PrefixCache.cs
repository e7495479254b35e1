using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;

namespace FlexKv.Core.Index;

/// <summary>
/// The control plane alone: hashing plus the block index over a block budget, with no bytes.
/// It answers "how much of this sequence is cached" and records "this sequence is now cached",
/// which is what trace replays and capacity planning need (FlexKV's cache engine has the same
/// role). Sequences are named by the caller so a match followed by an insert of the same, longer
/// sequence hashes each block once. Not thread-safe.
/// </summary>
public sealed class PrefixCache
{
    private readonly BlockHasher _hasher;
    private readonly BlockIndex _index;
    private readonly Dictionary<long, HashedSequence> _sequences = new();
    private readonly Stack<HashedSequence> _spare = new();
    private int[] _walk = new int[1024];

    /// <summary>Creates a cache of <paramref name="capacityBlocks"/> blocks of <paramref name="tokensPerBlock"/> tokens.</summary>
    public PrefixCache(int tokensPerBlock, int capacityBlocks)
    {
        if (tokensPerBlock < 1) throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'tokens_per_block': must be > 0");
        if (capacityBlocks < 1) throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'num_cpu_blocks': must be > 0");
        _hasher = new BlockHasher(tokensPerBlock, CacheFingerprint.From(new EngineOptions { TokensPerBlock = tokensPerBlock, BlockBytes = 1 }).Value);
        _index = new BlockIndex(new SlotPool(capacityBlocks));
    }

    /// <summary>Tokens per block.</summary>
    public int TokensPerBlock => _hasher.TokensPerBlock;

    /// <summary>The underlying index (stats).</summary>
    public BlockIndex Index => _index;

    /// <summary>Cached leading tokens of sequence <paramref name="seq"/> (a multiple of the block size).</summary>
    public int Match(long seq, ReadOnlySpan<long> tokens) => MatchKeys(Sequence(seq, tokens));

    /// <summary>
    /// Stores the full blocks of <paramref name="tokens"/> not cached yet (evicting LRU leaves
    /// when full) and ends sequence <paramref name="seq"/>. Returns the number of blocks stored.
    /// </summary>
    public int Insert(long seq, ReadOnlySpan<long> tokens)
    {
        HashedSequence s = Sequence(seq, tokens);
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

    private int MatchKeys(HashedSequence s)
    {
        EnsureWalk(s.Blocks);
        return _index.MatchReady(s.Keys, _walk, _index.Tick()) * TokensPerBlock;
    }

    private int InsertKeys(HashedSequence s)
    {
        ReadOnlySpan<UInt128> keys = s.Keys;
        long clock = _index.Tick();
        int parent = -1, i = 0;
        for (; i < keys.Length; i++)
        {
            int id = _index.Lookup(keys[i]);
            if (id < 0) break;
            _index.Touch(id, clock);
            parent = id;
        }
        int stored = 0;
        for (; i < keys.Length; i++)
        {
            int id = _index.InsertWriting(keys[i], parent, clock);
            if (id < 0) break;
            _index.CompleteWrite(id, ok: true);
            parent = id;
            stored++;
        }
        _index.TouchDone(parent);
        return stored;
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
        var s = new HashedSequence();
        for (int i = 0; i < promptLengths.Length; i++)
        {
            long p = promptLengths[i], t = totalLengths[i];
            if (p < 0 || t < p || offset + t > tokens.Length)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"sequence {i}: lengths {p}/{t} do not fit the token buffer");
            ReadOnlySpan<long> seq = tokens.Slice((int)offset, (int)t);
            s.Begin(_hasher.RootSeed);
            s.Extend(_hasher, seq[..(int)p]);
            matched[i] = MatchKeys(s);
            s.Extend(_hasher, seq);
            InsertKeys(s);
            total += matched[i];
            offset += t;
        }
        s.Reset();
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

    private HashedSequence Sequence(long seq, ReadOnlySpan<long> tokens)
    {
        if (!_sequences.TryGetValue(seq, out var s))
        {
            s = _spare.Count > 0 ? _spare.Pop() : new HashedSequence();
            s.Begin(_hasher.RootSeed);
            _sequences.Add(seq, s);
        }
        else if (tokens.Length < s.TokensSeen)
        {
            throw new FlexKvException(FlexKvStatus.InvalidArgument,
                $"sequence {seq} was {s.TokensSeen} tokens long and is now {tokens.Length}: a sequence may only grow");
        }
        s.Extend(_hasher, tokens);
        return s;
    }

    private void EnsureWalk(int n)
    {
        if (_walk.Length < n) _walk = new int[Math.Max(n, _walk.Length * 2)];
    }
}
