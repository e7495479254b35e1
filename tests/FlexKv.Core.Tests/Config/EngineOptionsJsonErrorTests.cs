using FlexKv.Core.Config;
using FlexKv.Core.Errors;

namespace FlexKv.Core.Tests.Config;

public class EngineOptionsJsonErrorTests
{
    private static FlexKvException AssertInvalidConfig(string json, string key)
    {
        var ex = Assert.Throws<FlexKvException>(() => EngineOptionsJson.Parse(json));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
        Assert.Contains(key, ex.Message);
        return ex;
    }

    [Theory]
    [InlineData("{")]
    [InlineData("not json")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024""")]
    [InlineData("[1,2]")]
    public void Parse_MalformedJson_ThrowsInvalidConfig(string json)
    {
        var ex = Assert.Throws<FlexKvException>(() => EngineOptionsJson.Parse(json));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
        Assert.Contains("JSON", ex.Message);
    }

    [Fact]
    public void Parse_JsonNull_ThrowsInvalidConfig()
    {
        var ex = Assert.Throws<FlexKvException>(() => EngineOptionsJson.Parse("null"));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
    }

    [Fact]
    public void Parse_UnknownKey_NamesTheKey()
    {
        // A typo must not be silently ignored (the user would get a default instead).
        AssertInvalidConfig("""{"num_cpu_blocks":8,"block_bytes":1024,"cpu_cach_gb":4}""", "cpu_cach_gb");
    }

    [Fact]
    public void Parse_WrongValueType_ThrowsInvalidConfig()
    {
        AssertInvalidConfig("""{"num_cpu_blocks":"eight","block_bytes":1024}""", "num_cpu_blocks");
    }

    [Theory]
    [InlineData("""{"cpu_cache_gb":0,"block_bytes":1024}""", "cpu_cache_gb")]
    [InlineData("""{"cpu_cache_gb":-1.5,"block_bytes":1024}""", "cpu_cache_gb")]
    [InlineData("""{"num_cpu_blocks":0,"block_bytes":1024}""", "num_cpu_blocks")]
    [InlineData("""{"num_cpu_blocks":-3,"block_bytes":1024}""", "num_cpu_blocks")]
    [InlineData("""{"num_cpu_blocks":3000000000,"block_bytes":1024}""", "num_cpu_blocks")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"tokens_per_block":0}""", "tokens_per_block")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"tokens_per_block":-16}""", "tokens_per_block")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":0}""", "block_bytes")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"transfer_threads":0}""", "transfer_threads")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"transfer_queue_capacity":1}""", "transfer_queue_capacity")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"eviction_policy":"lfu"}""", "eviction_policy")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"max_memory_fraction":1.5}""", "max_memory_fraction")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":1024,"tp_size":0}""", "tp_size")]
    public void Parse_OutOfRangeValue_NamesTheKey(string json, string key) => AssertInvalidConfig(json, key);

    [Fact]
    public void Parse_NoCpuSize_NamesCpuCacheGb()
    {
        AssertInvalidConfig("""{"block_bytes":1024}""", "cpu_cache_gb");
    }

    [Theory]
    [InlineData("""{"num_cpu_blocks":8}""", "num_layers")]
    [InlineData("""{"num_cpu_blocks":8,"num_layers":2,"head_size":64}""", "num_kv_heads")]
    [InlineData("""{"num_cpu_blocks":8,"num_layers":2,"num_kv_heads":4}""", "head_size")]
    [InlineData("""{"num_cpu_blocks":8,"num_layers":0,"num_kv_heads":4,"head_size":64}""", "num_layers")]
    public void Parse_NoBlockSize_NamesTheMissingModelField(string json, string key) => AssertInvalidConfig(json, key);

    [Theory]
    [InlineData("int4")]
    [InlineData("")]
    public void Parse_UnknownDtype_NamesDtype(string dtype)
    {
        var ex = AssertInvalidConfig($$"""{"num_cpu_blocks":8,"block_bytes":1024,"dtype":"{{dtype}}"}""", "dtype");
        Assert.Contains($"'{dtype}'", ex.Message);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 4)]
    [InlineData(2, 7)]
    [InlineData(2, -1)]
    public void Parse_TpRankOutsideTpSize_NamesTpRank(int tpSize, int tpRank)
    {
        AssertInvalidConfig($$"""{"num_cpu_blocks":8,"block_bytes":1024,"tp_size":{{tpSize}},"tp_rank":{{tpRank}}}""", "tp_rank");
    }

    [Fact]
    public void Parse_BlockLargerThan4GiB_NamesBlockBytes()
    {
        AssertInvalidConfig("""{"num_cpu_blocks":8,"block_bytes":5000000000}""", "block_bytes");
    }

    [Fact]
    public void ResolveCpuBlocks_CacheSmallerThanOneBlock_NamesCpuCacheGb()
    {
        // Parse accepts it (the size is positive); the pool size computation must refuse it.
        EngineOptions o = EngineOptionsJson.Parse("""{"cpu_cache_gb":0.000001,"block_bytes":1048576}""");

        var ex = Assert.Throws<FlexKvException>(() => EngineOptionsValidator.ResolveCpuBlocks(o));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
        Assert.Contains("cpu_cache_gb", ex.Message);
    }
}
