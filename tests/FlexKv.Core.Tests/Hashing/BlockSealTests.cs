using System.Buffers.Binary;
using System.IO.Hashing;
using FlexKv.Core.Hashing;

namespace FlexKv.Core.Tests.Hashing;

/// <summary>A block's seal holds only for its own key and cache, and with a secret only the secret's holder can make one.</summary>
public class BlockSealTests
{
    private const ulong Fp = 0xF1F2;
    private static readonly byte[] Block = Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray();

    public static TheoryData<string> Secrets => new() { "", "a-deployment-secret" };

    [Theory]
    [MemberData(nameof(Secrets))]
    public void TheSeal_VerifiesForItsKeyAndBytesOnly(string secret)
    {
        using var seal = new BlockSeal(Fp, secret);
        UInt128 tag = seal.Seal(1, Block);
        Assert.True(seal.Verify(1, Block, tag));
        Assert.False(seal.Verify(2, Block, tag)); // the same bytes under another key
        byte[] flipped = (byte[])Block.Clone();
        flipped[4000] ^= 1;
        Assert.False(seal.Verify(1, flipped, tag));
        Assert.False(seal.Verify(1, Block.AsSpan(0, 4096), tag));
        using var otherCache = new BlockSeal(Fp + 1, secret);
        Assert.False(otherCache.Verify(1, Block, tag)); // the same key and bytes in another cache
    }

    [Fact]
    public void WithASecret_AnUnkeyedHashRecomputedByAnyone_IsRefused()
    {
        using var keyed = new BlockSeal(Fp, "a-deployment-secret");
        Assert.True(keyed.Keyed);
        // What an attacker who knows the format but not the secret can compute for chosen bytes:
        // the unkeyed seal (fingerprint and key are in every Redis key name and journal header)
        // and the checksum of the old format.
        using var unkeyed = new BlockSeal(Fp, "");
        Assert.False(unkeyed.Keyed);
        Assert.False(keyed.Verify(1, Block, unkeyed.Seal(1, Block)));
        Assert.False(keyed.Verify(1, Block, UnkeyedByHand(Fp, 1, Block)));
        Assert.False(keyed.Verify(1, Block, XxHash3.HashToUInt64(Block)));
        using var otherSecret = new BlockSeal(Fp, "another-secret");
        Assert.False(keyed.Verify(1, Block, otherSecret.Seal(1, Block)));
    }

    [Fact]
    public void WithoutASecret_TheSealIsXxHash128OfFingerprintKeyAndBytes()
    {
        using var seal = new BlockSeal(Fp, "");
        Assert.Equal(UnkeyedByHand(Fp, 1, Block), seal.Seal(1, Block));
    }

    [Fact]
    public void TheSpanForm_MatchesTheNumberForm_AndRefusesAWrongLength()
    {
        using var seal = new BlockSeal(Fp, "s");
        Span<byte> tag = stackalloc byte[BlockSeal.TagBytes];
        seal.Seal(9, Block, tag);
        Assert.Equal(seal.Seal(9, Block), BinaryPrimitives.ReadUInt128LittleEndian(tag));
        Assert.True(seal.Verify(9, Block, tag));
        Assert.False(seal.Verify(9, Block, tag[..8]));
    }

    [Theory]
    [MemberData(nameof(Secrets))]
    public void ManyThreadsAtOnce_GetTheSameSealsAsOne(string secret)
    {
        using var seal = new BlockSeal(Fp, secret);
        UInt128[] expected = Enumerable.Range(0, 64).Select(k => seal.Seal((UInt128)k, Block)).ToArray();
        Parallel.For(0, 8, _ =>
        {
            for (int round = 0; round < 50; round++)
                for (int k = 0; k < 64; k++)
                    Assert.Equal(expected[k], seal.Seal((UInt128)k, Block));
        });
    }

    [Theory]
    [MemberData(nameof(Secrets))]
    public void SealingAndVerifying_AllocateNothing(string secret)
    {
        using var seal = new BlockSeal(Fp, secret);
        UInt128 tag = seal.Seal(3, Block); // the thread's hashing state is made on first use
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            tag = seal.Seal(3, Block);
            Assert.True(seal.Verify(3, Block, tag));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static UInt128 UnkeyedByHand(UInt128 fp, UInt128 key, byte[] block)
    {
        var data = new byte[32 + block.Length];
        BinaryPrimitives.WriteUInt128LittleEndian(data, fp);
        BinaryPrimitives.WriteUInt128LittleEndian(data.AsSpan(16), key);
        block.CopyTo(data, 32);
        return XxHash128.HashToUInt128(data);
    }
}
