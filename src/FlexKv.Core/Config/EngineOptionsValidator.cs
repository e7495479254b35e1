using FlexKv.Core.Errors;

namespace FlexKv.Core.Config;

/// <summary>Checks an <see cref="EngineOptions"/> once, before anything is allocated.</summary>
internal static class EngineOptionsValidator
{
    /// <summary>Largest block size in tokens (vLLM's block sizes are 16 to 256).</summary>
    public const int MaxTokensPerBlock = 4096;

    /// <summary>Throws <see cref="FlexKvStatus.InvalidConfig"/> naming the first bad key.</summary>
    public static void Validate(EngineOptions o)
    {
        Require(o.TokensPerBlock is > 0 and <= MaxTokensPerBlock, "tokens_per_block", $"must be in 1..{MaxTokensPerBlock}, got {o.TokensPerBlock}");
        if (o.CpuCacheGb is { } gb)
            Require(gb > 0 && double.IsFinite(gb), "cpu_cache_gb", $"must be > 0, got {gb}");
        Require(o.SsdCacheGb >= 0 && double.IsFinite(o.SsdCacheGb), "ssd_cache_gb", $"must be >= 0, got {o.SsdCacheGb}");
        Require(o.SsdCacheGb == 0 || !string.IsNullOrWhiteSpace(o.SsdCacheDir), "ssd_cache_dir", "must name at least one directory");
        Require(!o.SsdCacheDir.Contains('\0'), "ssd_cache_dir", "contains a NUL character, which no path can hold");
        string remote = ResolveRemoteUrl(o);
        Require(remote.Length == 0 || remote.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Length > 0,
            "remote_url", "names no address (expected redis://host:port, several separated by commas)");
        Require(o.RedisPort is >= 0 and <= 65535, "redis_port", $"must be in 0..65535, got {o.RedisPort}");
        Require(o.RemoteTtlSeconds >= 0, "remote_ttl_s", $"must be >= 0, got {o.RemoteTtlSeconds}");
        Require(o.RemoteLookupBudgetMs is >= 0 and <= 60_000, "remote_lookup_budget_ms", $"must be in 0..60000, got {o.RemoteLookupBudgetMs}");
        Require(o.RemoteTimeoutMs is > 0 and <= 600_000, "remote_timeout_ms", $"must be in 1..600000, got {o.RemoteTimeoutMs}");
        Require(o.RemoteMaxInflightMb > 0, "remote_max_inflight_mb", $"must be > 0, got {o.RemoteMaxInflightMb}");
        if (o.NumCpuBlocks is { } nb)
            Require(nb > 0 && nb <= int.MaxValue, "num_cpu_blocks", $"must be in 1..{int.MaxValue}, got {nb}");
        if (o.CpuCacheGb is null && o.NumCpuBlocks is null)
            Fail("cpu_cache_gb", "the CPU tier needs a size: set cpu_cache_gb or num_cpu_blocks");
        if (o.BlockBytes is { } bb)
            Require(bb > 0, "block_bytes", $"must be > 0, got {bb}");
        else
        {
            Require(o.NumLayers is > 0, "num_layers", "must be > 0 (or give block_bytes)");
            Require(o.NumKvHeads is > 0, "num_kv_heads", "must be > 0 (or give block_bytes)");
            Require(o.HeadSize is > 0, "head_size", "must be > 0 (or give block_bytes)");
        }
        _ = DtypeSize(o.Dtype);
        Require(o.TpSize > 0, "tp_size", $"must be > 0, got {o.TpSize}");
        Require(o.TpRank >= 0 && o.TpRank < o.TpSize, "tp_rank", $"must be in 0..tp_size-1, got {o.TpRank}");
        Require(o.TransferThreads is > 0 and <= 64, "transfer_threads", $"must be in 1..64, got {o.TransferThreads}");
        Require(o.TransferQueueCapacity is >= 16 and <= 1 << 20, "transfer_queue_capacity", $"must be in 16..1048576, got {o.TransferQueueCapacity}");
        Require(o.EvictionPolicy == "lru", "eviction_policy", $"'{o.EvictionPolicy}' is not supported (supported: lru)");
        Require(o.MaxMemoryFraction is > 0 and <= 1, "max_memory_fraction", $"must be in (0, 1], got {o.MaxMemoryFraction}");
        Require(ResolveBlockBytes(o) <= 1L << 32, "block_bytes", $"a block of {ResolveBlockBytes(o)} bytes is larger than 4 GiB");
    }

    /// <summary>The remote tier's URL list, from <c>remote_url</c> or FlexKV's redis_host/redis_port; empty when off.</summary>
    public static string ResolveRemoteUrl(EngineOptions o)
    {
        if (!string.IsNullOrWhiteSpace(o.RemoteUrl)) return o.RemoteUrl.Trim();
        if (o.RedisPort > 0) return $"redis://{(string.IsNullOrEmpty(o.RedisHost) ? "127.0.0.1" : o.RedisHost)}:{o.RedisPort}";
        return "";
    }

    /// <summary>Bytes of one block over all layers, from <c>block_bytes</c> or the model fields.</summary>
    public static long ResolveBlockBytes(EngineOptions o)
    {
        if (o.BlockBytes is { } bb) return bb;
        try
        {
            long perToken = checked((long)o.NumKvHeads!.Value * o.HeadSize!.Value * DtypeSize(o.Dtype) * (o.UseMla ? 1 : 2));
            return checked(perToken * o.TokensPerBlock * o.NumLayers!.Value);
        }
        catch (OverflowException)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                "configuration key 'block_bytes': num_layers x num_kv_heads x head_size x tokens_per_block overflows");
        }
    }

    /// <summary>Number of CPU blocks the pool will hold.</summary>
    public static long ResolveCpuBlocks(EngineOptions o)
    {
        if (o.NumCpuBlocks is { } nb) return nb;
        long bytes = (long)(o.CpuCacheGb!.Value * (1L << 30));
        long blocks = bytes / ResolveBlockBytes(o);
        if (blocks < 1)
            Fail("cpu_cache_gb", $"{o.CpuCacheGb} GiB holds no block of {ResolveBlockBytes(o)} bytes");
        return Math.Min(blocks, int.MaxValue);
    }

    /// <summary>Element size of a KV dtype name as vLLM and FlexKV spell them.</summary>
    public static int DtypeSize(string dtype) => dtype.ToLowerInvariant() switch
    {
        "float16" or "fp16" or "half" or "bfloat16" or "bf16" => 2,
        "float32" or "fp32" or "float" => 4,
        "fp8" or "fp8_e4m3" or "fp8_e5m2" or "e4m3" or "uint8" or "int8" or "fp8_ds_mla" => 1,
        _ => throw new FlexKvException(FlexKvStatus.InvalidConfig,
            $"configuration key 'dtype': unknown KV dtype '{dtype}' (use float16, bfloat16, float32 or fp8)"),
    };

    private static void Require(bool ok, string key, string what)
    {
        if (!ok) Fail(key, what);
    }

    private static void Fail(string key, string what) =>
        throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key '{key}': {what}");
}
