using System.Buffers;

namespace FlexKv.Core.Hashing;

/// <summary>
/// Per-sequence hashing state: the chained keys of the full blocks seen so far. A sequence only
/// grows (prompt, then output), so asking about it again or putting it later hashes only the
/// blocks that are new. Key storage comes from the shared array pool and returns on
/// <see cref="Reset"/>.
/// </summary>
internal sealed class HashedSequence
{
    private UInt128[] _keys = [];

    /// <summary>The namespace seed (key of block -1).</summary>
    public UInt128 Seed { get; private set; }

    /// <summary>Number of tokens the sequence has been told about.</summary>
    public int TokensSeen { get; private set; }

    /// <summary>Number of full blocks hashed.</summary>
    public int Blocks { get; private set; }

    /// <summary>Keys of the hashed blocks.</summary>
    public ReadOnlySpan<UInt128> Keys => _keys.AsSpan(0, Blocks);

    /// <summary>Starts the sequence with a namespace seed.</summary>
    public void Begin(UInt128 seed)
    {
        Reset();
        Seed = seed;
    }

    /// <summary>
    /// Extends the sequence to <paramref name="tokens"/> (which must start with the tokens seen
    /// before) and hashes the new full blocks.
    /// </summary>
    public void Extend(BlockHasher hasher, ReadOnlySpan<long> tokens)
    {
        int blocks = tokens.Length / hasher.TokensPerBlock;
        if (tokens.Length > TokensSeen) TokensSeen = tokens.Length;
        if (blocks <= Blocks) return;
        EnsureKeys(blocks);
        UInt128 parent = Blocks == 0 ? Seed : _keys[Blocks - 1];
        hasher.HashBlocks(tokens[..(blocks * hasher.TokensPerBlock)], Blocks, parent, _keys);
        Blocks = blocks;
    }

    /// <summary>
    /// Extends the sequence by the tokens from <paramref name="firstToken"/> on, which must be
    /// where the hashed full blocks end (the tokens of a partial last block are not kept, so
    /// they come again): callers that hold the sequence elsewhere send only its new end.
    /// </summary>
    public void ExtendTail(BlockHasher hasher, ReadOnlySpan<long> tail, int firstToken)
    {
        if (firstToken != Blocks * hasher.TokensPerBlock)
            throw new ArgumentOutOfRangeException(nameof(firstToken), firstToken,
                $"the sequence's hashed blocks end at token {Blocks * hasher.TokensPerBlock}");
        int total = checked(firstToken + tail.Length);
        int blocks = total / hasher.TokensPerBlock;
        if (total > TokensSeen) TokensSeen = total;
        if (blocks <= Blocks) return;
        EnsureKeys(blocks);
        UInt128 parent = Blocks == 0 ? Seed : _keys[Blocks - 1];
        hasher.HashBlocks(tail[..((blocks - Blocks) * hasher.TokensPerBlock)], 0, parent, _keys.AsSpan(Blocks));
        Blocks = blocks;
    }

    private void EnsureKeys(int blocks)
    {
        if (_keys.Length >= blocks) return;
        var bigger = ArrayPool<UInt128>.Shared.Rent(Math.Max(blocks, 64));
        Keys.CopyTo(bigger);
        if (_keys.Length > 0) ArrayPool<UInt128>.Shared.Return(_keys);
        _keys = bigger;
    }

    /// <summary>Forgets everything and returns the key storage.</summary>
    public void Reset()
    {
        if (_keys.Length > 0) ArrayPool<UInt128>.Shared.Return(_keys);
        _keys = [];
        Blocks = 0;
        TokensSeen = 0;
        Seed = default;
    }
}
