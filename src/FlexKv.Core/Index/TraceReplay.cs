using FlexKv.Core.Hashing;

namespace FlexKv.Core.Index;

/// <summary>
/// The walk behind <see cref="PrefixCache.Replay"/>: each sequence of a trace is matched (its
/// prompt) and inserted (prompt and output) in one pass over its blocks. Requests of a trace
/// share long prefixes with earlier ones (a conversation's next turn repeats it whole), and
/// the whole trace is in the caller's buffer for the call: so every block this call inserts
/// records where its tokens are, and a block whose parent's last inserted child holds the same
/// tokens is that child (equal tokens under an equal parent give an equal key) without being
/// hashed. Only blocks the call has not seen yet are hashed. The match's touches are not done:
/// the insert that follows touches the same blocks at a later tick before anything reads them.
/// Not thread-safe (one caller, like the index).
/// </summary>
internal sealed class TraceReplay(BlockIndex index, BlockHasher hasher)
{
    private UInt128[] _keys = new UInt128[256];
    private int[] _run = new int[256];
    // Per node: where its tokens start in the buffer of call _stamp[node] (older calls' buffers are gone).
    private int[] _tokenAt = new int[1024];
    private int[] _stamp = new int[1024];
    private int _call;

    /// <summary>Replays packed sequences (lengths already checked); writes each match and returns their sum.</summary>
    public long Run(ReadOnlySpan<long> tokens, ReadOnlySpan<long> promptLengths, ReadOnlySpan<long> totalLengths, Span<int> matched)
    {
        if (++_call == int.MaxValue)
        {
            Array.Clear(_stamp);
            _call = 1;
        }
        int tpb = hasher.TokensPerBlock;
        long total = 0;
        int offset = 0;
        for (int i = 0; i < promptLengths.Length; i++)
        {
            int t = (int)totalLengths[i];
            int blocks = t / tpb;
            if (_keys.Length < blocks)
            {
                _keys = new UInt128[Math.Max(blocks, 2 * _keys.Length)];
                _run = new int[_keys.Length];
            }
            int found = Walk(tokens, offset, blocks);
            index.Tick(); // the match's use: the insert's touches overwrite it
            matched[i] = Math.Min(found, (int)(promptLengths[i] / tpb)) * tpb;
            Insert(offset, blocks, found);
            total += matched[i];
            offset += t;
        }
        return total;
    }

    // Keys of the sequence's blocks and the leading run the index holds (its node ids in _run).
    private int Walk(ReadOnlySpan<long> tokens, int offset, int blocks)
    {
        int tpb = hasher.TokensPerBlock;
        ReadOnlySpan<long> seq = tokens.Slice(offset, blocks * tpb);
        UInt128 key = hasher.RootSeed;
        int cur = -1;
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<long> block = seq.Slice(b * tpb, tpb);
            int c = cur >= 0 ? index.Node(cur).ChildHint : -1;
            if (c >= 0 && HoldsTokens(c, cur, tokens, block))
            {
                key = index.Node(c).Key;
            }
            else
            {
                key = hasher.HashBlock(key, block);
                c = index.Lookup(key, cur);
                if (c < 0)
                {
                    // Off the cached prefix: the rest is new, hashed in one go.
                    _keys[b] = key;
                    hasher.HashBlocks(seq, b + 1, key, _keys);
                    return b;
                }
            }
            _keys[b] = key;
            _run[b] = c;
            cur = c;
        }
        return blocks;
    }

    // Whether node c, a child of cur inserted by this call, holds exactly these tokens.
    private bool HoldsTokens(int c, int cur, ReadOnlySpan<long> tokens, ReadOnlySpan<long> block)
    {
        if ((uint)c >= (uint)_stamp.Length || _stamp[c] != _call) return false;
        ref readonly BlockNode n = ref index.Node(c);
        return n.State != BlockState.Free && n.Parent == cur && tokens.Slice(_tokenAt[c], block.Length).SequenceEqual(block);
    }

    // As PrefixCache's insert: the cached run is touched, the new blocks go in (evicting LRU
    // leaves when full) and complete last to first, so only the new leaf becomes a candidate.
    private void Insert(int offset, int blocks, int found)
    {
        int tpb = hasher.TokensPerBlock;
        long clock = index.Tick();
        int parent = -1;
        for (int i = 0; i < found; i++)
        {
            index.Touch(_run[i], clock);
            parent = _run[i];
        }
        int b = found;
        for (; b < blocks; b++)
        {
            int id = index.InsertWriting(_keys[b], parent, clock);
            if (id < 0) break;
            Record(id, offset + b * tpb);
            _run[b] = id;
            parent = id;
        }
        for (int j = b - 1; j >= found; j--) index.CompleteWrite(_run[j], ok: true);
        if (b == found) index.TouchDone(parent);
    }

    private void Record(int node, int tokenAt)
    {
        if (node >= _stamp.Length)
        {
            int n = Math.Max(node + 1, 2 * _stamp.Length);
            Array.Resize(ref _stamp, n);
            Array.Resize(ref _tokenAt, n);
        }
        _tokenAt[node] = tokenAt;
        _stamp[node] = _call;
    }
}
