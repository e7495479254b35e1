using FlexKv.Core.Config;
using FlexKv.Core.Hashing;
using static FlexKv.Core.Tests.Hashing.HashTestData;

namespace FlexKv.Core.Tests.Hashing;

public class BlockHasherSeedTests
{
    private readonly BlockHasher _hasher = new(tokensPerBlock: 4, fingerprint: 777);

    [Fact]
    public void SeedFor_EmptyNamespace_IsTheFingerprint()
    {
        Assert.Equal((UInt128)777, _hasher.SeedFor(""));
        Assert.Equal(_hasher.RootSeed, _hasher.SeedFor(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void SeedFor_DifferentNamespaces_GiveDifferentSeedsAndKeys()
    {
        long[] t = Tokens(12);
        UInt128[] seeds = [_hasher.RootSeed, _hasher.SeedFor("lora-a"), _hasher.SeedFor("lora-b"), _hasher.SeedFor("salt:lora-a")];

        Assert.Equal(seeds.Length, seeds.Distinct().Count());
        var keys = seeds.Select(s => Keys(_hasher, t, s)).ToArray();
        for (int b = 0; b < 3; b++)
            Assert.Equal(seeds.Length, keys.Select(k => k[b]).Distinct().Count());
    }

    [Fact]
    public void SeedFor_SameNamespaceTwice_IsStable()
    {
        Assert.Equal(_hasher.SeedFor("tenant-1"), new BlockHasher(4, 777).SeedFor("tenant-1"u8));
    }

    [Fact]
    public void HashBlocks_DifferentFingerprints_NeverShareAKey()
    {
        long[] t = Tokens(12);
        var other = new BlockHasher(4, 778);

        UInt128[] a = Keys(_hasher, t, _hasher.RootSeed);
        UInt128[] b = Keys(other, t, other.RootSeed);

        Assert.Empty(a.Intersect(b));
        Assert.NotEqual(_hasher.SeedFor("ns"), other.SeedFor("ns"));
    }

    [Fact]
    public void CacheFingerprint_EqualOptions_GiveEqualValues()
    {
        var a = CacheFingerprint.From(new EngineOptions { ModelName = "m", BlockBytes = 1024 });
        var b = CacheFingerprint.From(new EngineOptions { ModelName = "m", BlockBytes = 1024 });

        Assert.Equal(a.Value, b.Value);
        Assert.Equal(a.Text, b.Text);
    }

    public static TheoryData<string> FingerprintChanges => new()
    {
        "model_name", "dtype", "layout", "use_mla", "tp_rank", "tp_size", "tokens_per_block", "block_bytes", "secret",
    };

    [Theory]
    [MemberData(nameof(FingerprintChanges))]
    public void CacheFingerprint_AnyIdentityFieldChanged_ChangesTheValue(string field)
    {
        EngineOptions Make() => new() { ModelName = "m", BlockBytes = 1024, TpSize = 4, TpRank = 1 };
        EngineOptions changed = Make();
        switch (field)
        {
            case "model_name": changed.ModelName = "m2"; break;
            case "dtype": changed.Dtype = "bfloat16"; break;
            case "layout": changed.Layout = "nhd"; break;
            case "use_mla": changed.UseMla = true; break;
            case "tp_rank": changed.TpRank = 2; break;
            case "tp_size": changed.TpSize = 8; break;
            case "tokens_per_block": changed.TokensPerBlock = 32; break;
            case "block_bytes": changed.BlockBytes = 2048; break;
            case "secret": changed.Secret = "k"; break;
        }

        Assert.NotEqual(CacheFingerprint.From(Make()).Value, CacheFingerprint.From(changed).Value);
    }
}
