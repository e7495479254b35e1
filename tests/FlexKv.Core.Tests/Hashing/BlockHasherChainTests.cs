using FlexKv.Core.Hashing;
using static FlexKv.Core.Tests.Hashing.HashTestData;

namespace FlexKv.Core.Tests.Hashing;

public class BlockHasherChainTests
{
    private readonly BlockHasher _hasher = new(tokensPerBlock: 4, fingerprint: 12345);

    [Fact]
    public void HashBlocks_EqualPrefixes_GiveEqualKeysForTheSharedBlocks()
    {
        long[] a = Tokens(16);
        long[] b = [.. a[..8], .. Tokens(8, seed: 99)];

        UInt128[] ka = Keys(_hasher, a, _hasher.RootSeed);
        UInt128[] kb = Keys(_hasher, b, _hasher.RootSeed);

        Assert.Equal(ka[..2], kb[..2]);
        Assert.NotEqual(ka[2], kb[2]);
        Assert.NotEqual(ka[3], kb[3]);
    }

    [Fact]
    public void HashBlocks_SameInputTwice_IsDeterministic()
    {
        long[] t = Tokens(20);

        Assert.Equal(Keys(_hasher, t, _hasher.RootSeed), Keys(new BlockHasher(4, 12345), t, 12345));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(11)]
    public void HashBlocks_OneTokenChanged_ChangesThatBlockAndEveryLaterKey(int changed)
    {
        long[] a = Tokens(16);
        long[] b = (long[])a.Clone();
        b[changed]++;

        UInt128[] ka = Keys(_hasher, a, _hasher.RootSeed);
        UInt128[] kb = Keys(_hasher, b, _hasher.RootSeed);

        int block = changed / 4;
        for (int i = 0; i < ka.Length; i++)
        {
            // Later blocks have identical tokens; only the chain makes them differ.
            if (i < block) Assert.Equal(ka[i], kb[i]);
            else Assert.NotEqual(ka[i], kb[i]);
        }
    }

    [Fact]
    public void HashBlocks_SameBlockAtDifferentPositions_GetsDifferentKeys()
    {
        long[] block = Tokens(4);
        long[] t = [.. block, .. block, .. block];

        UInt128[] k = Keys(_hasher, t, _hasher.RootSeed);

        Assert.Equal(3, k.Distinct().Count());
    }

    [Fact]
    public void HashBlocks_TrailingPartialBlock_IsNotHashed()
    {
        long[] t = Tokens(11);
        var keys = new UInt128[3];

        _hasher.HashBlocks(t, 0, _hasher.RootSeed, keys);

        Assert.NotEqual(UInt128.Zero, keys[1]);
        Assert.Equal(UInt128.Zero, keys[2]);
    }

    [Fact]
    public void HashBlocks_StartingAtDone_ContinuesTheChainFromParent()
    {
        long[] t = Tokens(16);
        UInt128[] all = Keys(_hasher, t, _hasher.RootSeed);
        var keys = new UInt128[4];

        _hasher.HashBlocks(t, 2, all[1], keys);

        Assert.Equal(all[2..], keys[2..]);
        Assert.Equal(UInt128.Zero, keys[0]);
    }

    [Fact]
    public void HashBlocks_FirstKey_IsXxHash128OfSeedAndLittleEndianTokens()
    {
        // The key format is persisted by the SSD and remote tiers, so it must stay exactly this.
        long[] t = [1, 2, 3, 0x0102030405060708];
        UInt128 seed = new(0x1111111111111111, 0x2222222222222222);
        var buf = new byte[16 + 32];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buf, (ulong)seed);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(8), (ulong)(seed >> 64));
        for (int i = 0; i < 4; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(16 + 8 * i), t[i]);

        Assert.Equal(System.IO.Hashing.XxHash128.HashToUInt128(buf), Keys(_hasher, t, seed)[0]);
    }
}
