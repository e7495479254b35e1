using System.Text.Json.Serialization;

namespace FlexKv.Core.Config;

/// <summary>
/// The engine's configuration: the one JSON document that crosses the C ABI at create.
/// Names follow FlexKV's (<c>cpu_cache_gb</c>, <c>tokens_per_block</c>, …) so a FlexKV user's
/// file maps over unchanged; the Python package fills it from files, env vars and vLLM.
/// </summary>
internal sealed class EngineOptions
{
    /// <summary>Default block size in tokens (vLLM's default on CUDA).</summary>
    public const int DefaultTokensPerBlock = 16;

    /// <summary>Tokens per block (= vLLM's cache block size).</summary>
    [JsonPropertyName("tokens_per_block")] public int TokensPerBlock { get; set; } = DefaultTokensPerBlock;

    /// <summary>CPU tier size in GiB; used when <see cref="NumCpuBlocks"/> is not set.</summary>
    [JsonPropertyName("cpu_cache_gb")] public double? CpuCacheGb { get; set; }

    /// <summary>CPU tier size in blocks; wins over <see cref="CpuCacheGb"/>.</summary>
    [JsonPropertyName("num_cpu_blocks")] public long? NumCpuBlocks { get; set; }

    /// <summary>SSD tier size in GiB; 0 disables the tier.</summary>
    [JsonPropertyName("ssd_cache_gb")] public double SsdCacheGb { get; set; }

    /// <summary>SSD cache directories, ';'-separated (one per device); blocks are striped over them.</summary>
    [JsonPropertyName("ssd_cache_dir")] public string SsdCacheDir { get; set; } = "./flexkv_ssd";

    /// <summary>Open the SSD files with O_DIRECT (false: buffered I/O through the page cache).</summary>
    [JsonPropertyName("ssd_direct_io")] public bool SsdDirectIo { get; set; } = true;

    /// <summary>Reuse the SSD blocks of a previous run with the same fingerprint (false: start empty).</summary>
    [JsonPropertyName("ssd_persist")] public bool SsdPersist { get; set; } = true;

    /// <summary>Remote tier (Redis/Valkey) URL(s), comma-separated: redis://[user:password@]host:port, rediss:// for TLS; several = a cluster.</summary>
    [JsonPropertyName("remote_url")] public string RemoteUrl { get; set; } = "";

    /// <summary>FlexKV's key: Redis host (used when remote_url is empty and redis_port is set).</summary>
    [JsonPropertyName("redis_host")] public string RedisHost { get; set; } = "";

    /// <summary>FlexKV's key: Redis port.</summary>
    [JsonPropertyName("redis_port")] public int RedisPort { get; set; }

    /// <summary>Redis password (FlexKV's redis_password); overrides one in the URL.</summary>
    [JsonPropertyName("redis_password")] public string RedisPassword { get; set; } = "";

    /// <summary>Redis ACL user name.</summary>
    [JsonPropertyName("remote_user")] public string RemoteUser { get; set; } = "";

    /// <summary>Prefix of every key FlexKv writes.</summary>
    [JsonPropertyName("remote_prefix")] public string RemotePrefix { get; set; } = "flexkv:";

    /// <summary>Expiry of remote blocks in seconds (0: none; Redis' maxmemory policy evicts).</summary>
    [JsonPropertyName("remote_ttl_s")] public int RemoteTtlSeconds { get; set; }

    /// <summary>Time a lookup may wait for Redis before the blocks count as misses.</summary>
    [JsonPropertyName("remote_lookup_budget_ms")] public int RemoteLookupBudgetMs { get; set; } = 20;

    /// <summary>Connect and command timeout.</summary>
    [JsonPropertyName("remote_timeout_ms")] public int RemoteTimeoutMs { get; set; } = 2000;

    /// <summary>Bytes of remote writes queued at most; more are dropped (the CPU tier still has them).</summary>
    [JsonPropertyName("remote_max_inflight_mb")] public int RemoteMaxInflightMb { get; set; } = 512;

    /// <summary>Whether reset_cache also deletes this engine's keys in Redis (SCAN + UNLINK).</summary>
    [JsonPropertyName("remote_drop_on_reset")] public bool RemoteDropOnReset { get; set; }

    /// <summary>Bytes of one block over all layers; derived from the model fields when absent.</summary>
    [JsonPropertyName("block_bytes")] public long? BlockBytes { get; set; }

    /// <summary>Number of attention layers (with the fields below gives <see cref="BlockBytes"/>).</summary>
    [JsonPropertyName("num_layers")] public int? NumLayers { get; set; }

    /// <summary>KV heads per rank.</summary>
    [JsonPropertyName("num_kv_heads")] public int? NumKvHeads { get; set; }

    /// <summary>Head size in elements.</summary>
    [JsonPropertyName("head_size")] public int? HeadSize { get; set; }

    /// <summary>KV cache dtype name (float16, bfloat16, float32, fp8, …).</summary>
    [JsonPropertyName("dtype")] public string Dtype { get; set; } = "float16";

    /// <summary>MLA caches hold one latent vector per token instead of K and V.</summary>
    [JsonPropertyName("use_mla")] public bool UseMla { get; set; }

    /// <summary>Model identity for the cache fingerprint.</summary>
    [JsonPropertyName("model_name")] public string ModelName { get; set; } = "";

    /// <summary>Layout name for the cache fingerprint (blocks copied as bytes must match layouts).</summary>
    [JsonPropertyName("layout")] public string Layout { get; set; } = "";

    /// <summary>Tensor-parallel size for the cache fingerprint.</summary>
    [JsonPropertyName("tp_size")] public int TpSize { get; set; } = 1;

    /// <summary>Tensor-parallel rank for the cache fingerprint.</summary>
    [JsonPropertyName("tp_rank")] public int TpRank { get; set; }

    /// <summary>Optional deployment secret mixed into every block key.</summary>
    [JsonPropertyName("secret")] public string Secret { get; set; } = "";

    /// <summary>Dedicated copy threads.</summary>
    [JsonPropertyName("transfer_threads")] public int TransferThreads { get; set; } = 2;

    /// <summary>Capacity of the copy-work queue (chunks); launch never blocks on it.</summary>
    [JsonPropertyName("transfer_queue_capacity")] public int TransferQueueCapacity { get; set; } = 4096;

    /// <summary>
    /// CUDA path: submit each batch with the driver's batched copy where it has one (CUDA 12.8+);
    /// false issues one asynchronous copy per span (for comparison, or a driver that misbehaves).
    /// </summary>
    [JsonPropertyName("cuda_batch_copy")] public bool CudaBatchCopy { get; set; } = true;

    /// <summary>Ask the kernel for transparent huge pages on the CPU pool.</summary>
    [JsonPropertyName("use_hugepage_cpu_buffer")] public bool UseHugepageCpuBuffer { get; set; } = true;

    /// <summary>Eviction policy name; "lru" is the one implemented.</summary>
    [JsonPropertyName("eviction_policy")] public string EvictionPolicy { get; set; } = "lru";

    /// <summary>Refuse a CPU pool larger than this fraction of MemAvailable.</summary>
    [JsonPropertyName("max_memory_fraction")] public double MaxMemoryFraction { get; set; } = 0.9;
}
