using FlexKv.Core.Hashing;
using static FlexKv.Core.Tests.Hashing.HashTestData;

namespace FlexKv.Core.Tests.Hashing;

public class HashedSequenceTests
{
    private readonly BlockHasher _hasher = new(tokensPerBlock: 4, fingerprint: 42);

    public static TheoryData<int[]> Pieces => new()
    {
        new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
        new[] { 3, 5, 1, 7, 4 },
        new[] { 4, 4, 4, 4, 4 },
        new[] { 19, 1 },
        new[] { 0, 20 },
    };

    [Theory]
    [MemberData(nameof(Pieces))]
    public void ExtendTail_InPieces_EqualsHashingAllAtOnce(int[] pieces)
    {
        long[] t = Tokens(pieces.Sum());
        var whole = new HashedSequence();
        whole.Begin(_hasher.RootSeed);
        whole.Extend(_hasher, t);

        var grown = new HashedSequence();
        grown.Begin(_hasher.RootSeed);
        int n = 0;
        foreach (int p in pieces)
        {
            n += p;
            int first = grown.Blocks * _hasher.TokensPerBlock; // the partial block's tokens come again
            grown.ExtendTail(_hasher, t.AsSpan(first, n - first), first);
            Assert.Equal(n, grown.TokensSeen);
        }
        Assert.Equal(whole.Keys.ToArray(), grown.Keys.ToArray());
    }

    [Fact]
    public void ExtendTail_FromAnywhereButTheBlockBoundary_IsRefused()
    {
        long[] t = Tokens(10);
        var s = new HashedSequence();
        s.Begin(_hasher.RootSeed);
        s.Extend(_hasher, t);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.ExtendTail(_hasher, t.AsSpan(9), 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.ExtendTail(_hasher, t.AsSpan(4), 4));
    }

    [Theory]
    [MemberData(nameof(Pieces))]
    public void Extend_InPieces_EqualsHashingAllAtOnce(int[] pieces)
    {
        long[] t = Tokens(pieces.Sum());
        var whole = new HashedSequence();
        whole.Begin(_hasher.RootSeed);
        whole.Extend(_hasher, t);

        var grown = new HashedSequence();
        grown.Begin(_hasher.RootSeed);
        int n = 0;
        foreach (int p in pieces)
        {
            n += p;
            grown.Extend(_hasher, t.AsSpan(0, n));
        }

        Assert.Equal(5, whole.Blocks);
        Assert.Equal(whole.Keys.ToArray(), grown.Keys.ToArray());
        Assert.Equal(Keys(_hasher, t, _hasher.RootSeed), grown.Keys.ToArray());
    }

    [Fact]
    public void Extend_PartialTrailingBlock_IsNotHashedUntilComplete()
    {
        long[] t = Tokens(12);
        var s = new HashedSequence();
        s.Begin(_hasher.RootSeed);

        s.Extend(_hasher, t.AsSpan(0, 10));
        Assert.Equal(2, s.Blocks);
        Assert.Equal(10, s.TokensSeen);

        s.Extend(_hasher, t);
        Assert.Equal(3, s.Blocks);
        Assert.Equal(Keys(_hasher, t, _hasher.RootSeed), s.Keys.ToArray());
    }

    [Fact]
    public void Extend_ShorterThanSeen_KeepsKeysAndTokenCount()
    {
        long[] t = Tokens(12);
        var s = new HashedSequence();
        s.Begin(_hasher.RootSeed);
        s.Extend(_hasher, t);

        s.Extend(_hasher, t.AsSpan(0, 5));

        Assert.Equal(3, s.Blocks);
        Assert.Equal(12, s.TokensSeen);
    }

    [Fact]
    public void Extend_PastInitialCapacity_KeepsEarlierKeys()
    {
        // The key array is rented with room for 64 blocks; growing past it must copy the old keys.
        long[] t = Tokens(4 * 300);
        var s = new HashedSequence();
        s.Begin(_hasher.RootSeed);
        s.Extend(_hasher, t.AsSpan(0, 4 * 10));
        s.Extend(_hasher, t.AsSpan(0, 4 * 100));
        s.Extend(_hasher, t);

        Assert.Equal(Keys(_hasher, t, _hasher.RootSeed), s.Keys.ToArray());
    }

    [Fact]
    public void Begin_WithNamespaceSeed_ChainsFromThatSeed()
    {
        long[] t = Tokens(8);
        UInt128 seed = _hasher.SeedFor("lora");
        var s = new HashedSequence();
        s.Begin(seed);
        s.Extend(_hasher, t);

        Assert.Equal(seed, s.Seed);
        Assert.Equal(Keys(_hasher, t, seed), s.Keys.ToArray());
        Assert.NotEqual(Keys(_hasher, t, _hasher.RootSeed), s.Keys.ToArray());
    }

    [Fact]
    public void Reset_AfterUse_ForgetsEverything()
    {
        var s = new HashedSequence();
        s.Begin(_hasher.RootSeed);
        s.Extend(_hasher, Tokens(9));

        s.Reset();

        Assert.Equal(0, s.Blocks);
        Assert.Equal(0, s.TokensSeen);
        Assert.True(s.Keys.IsEmpty);
    }
}
