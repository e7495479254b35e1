namespace FlexKv.Core.Tests.Hashing;

internal static class HashTestData
{
    /// <summary>Deterministic token ids 0..n-1 mapped into a vocabulary-like range.</summary>
    public static long[] Tokens(int n, int seed = 1)
    {
        var rng = new Random(seed);
        var t = new long[n];
        for (int i = 0; i < n; i++) t[i] = rng.Next(0, 150_000);
        return t;
    }

    public static UInt128[] Keys(Core.Hashing.BlockHasher hasher, ReadOnlySpan<long> tokens, UInt128 seed)
    {
        var keys = new UInt128[tokens.Length / hasher.TokensPerBlock];
        hasher.HashBlocks(tokens, 0, seed, keys);
        return keys;
    }
}
