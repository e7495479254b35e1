using FlexKv.Core.Config;

namespace FlexKv.Core.Tests.Config;

public class EngineOptionsJsonValidTests
{
    [Fact]
    public void Parse_MinimalConfig_UsesDefaultsForTheRest()
    {
        EngineOptions o = EngineOptionsJson.Parse("""{"num_cpu_blocks":8,"block_bytes":1024}""");

        Assert.Equal(8, o.NumCpuBlocks);
        Assert.Equal(1024, o.BlockBytes);
        Assert.Null(o.CpuCacheGb);
        Assert.Equal(EngineOptions.DefaultTokensPerBlock, o.TokensPerBlock);
        Assert.Equal("float16", o.Dtype);
        Assert.Equal(1, o.TpSize);
        Assert.Equal(0, o.TpRank);
        Assert.Equal("lru", o.EvictionPolicy);
        Assert.Equal(8, EngineOptionsValidator.ResolveCpuBlocks(o));
        Assert.Equal(1024, EngineOptionsValidator.ResolveBlockBytes(o));
    }

    [Fact]
    public void Parse_AllKeys_AreMapped()
    {
        EngineOptions o = EngineOptionsJson.Parse("""
            {
              "tokens_per_block": 32, "cpu_cache_gb": 0.5, "num_layers": 4, "num_kv_heads": 8,
              "head_size": 128, "dtype": "bfloat16", "use_mla": false, "model_name": "m",
              "layout": "flash", "tp_size": 4, "tp_rank": 3, "secret": "s", "transfer_threads": 3,
              "transfer_queue_capacity": 64, "use_hugepage_cpu_buffer": false,
              "eviction_policy": "lru", "max_memory_fraction": 0.5
            }
            """);

        Assert.Equal(32, o.TokensPerBlock);
        Assert.Equal(0.5, o.CpuCacheGb);
        Assert.Equal("bfloat16", o.Dtype);
        Assert.Equal("m", o.ModelName);
        Assert.Equal("flash", o.Layout);
        Assert.Equal(3, o.TpRank);
        Assert.Equal("s", o.Secret);
        Assert.Equal(3, o.TransferThreads);
        Assert.Equal(64, o.TransferQueueCapacity);
        Assert.False(o.UseHugepageCpuBuffer);
        Assert.Equal(0.5, o.MaxMemoryFraction);
    }

    [Fact]
    public void Parse_CommentsAndTrailingCommas_AreAccepted()
    {
        // Hand-written config files carry both.
        EngineOptions o = EngineOptionsJson.Parse("""
            { // CPU tier
              "num_cpu_blocks": 8, "block_bytes": 1024, }
            """);

        Assert.Equal(8, o.NumCpuBlocks);
    }

    [Fact]
    public void Parse_NumCpuBlocksAndCpuCacheGb_NumCpuBlocksWins()
    {
        EngineOptions o = EngineOptionsJson.Parse("""{"num_cpu_blocks":8,"cpu_cache_gb":1,"block_bytes":1024}""");

        Assert.Equal(8, EngineOptionsValidator.ResolveCpuBlocks(o));
    }

    [Fact]
    public void ResolveCpuBlocks_CpuCacheGb_DividesByBlockBytes()
    {
        EngineOptions o = EngineOptionsJson.Parse("""{"cpu_cache_gb":0.25,"block_bytes":65536}""");

        Assert.Equal((1L << 28) / 65536, EngineOptionsValidator.ResolveCpuBlocks(o));
    }
}
