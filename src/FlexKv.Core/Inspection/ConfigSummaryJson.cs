using System.Globalization;
using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Hashing;

namespace FlexKv.Core.Inspection;

/// <summary>
/// What an engine created from a configuration would reserve, worked out as the engine does
/// (the validator's block and CPU slot counts, the SSD slot arithmetic) without reserving it:
/// what <c>flexkv check</c> compares with the machine. Nothing secret is written (the remote
/// URL is redacted, the secret only said to be set).
/// </summary>
internal static class ConfigSummaryJson
{
    private const long RegionAlignment = 2L << 20; // NativeRegion maps whole 2 MiB

    /// <summary>Writes the summary of validated options.</summary>
    public static void Write(Utf8JsonWriter w, EngineOptions o)
    {
        long bb = EngineOptionsValidator.ResolveBlockBytes(o);
        long cpuBlocks = EngineOptionsValidator.ResolveCpuBlocks(o);
        bool ssd = o.SsdCacheGb > 0;
        // CpuTier: slots are 4 KiB-aligned when an SSD tier reads and writes them with O_DIRECT.
        long stride = ssd ? SsdInspector.ExtentOf(bb) : bb;
        long pool = (stride * cpuBlocks + RegionAlignment - 1) / RegionAlignment * RegionAlignment;
        w.WriteStartObject();
        w.WriteNumber("tokens_per_block", o.TokensPerBlock);
        w.WriteNumber("block_bytes", bb);
        w.WriteNumber("cpu_blocks", cpuBlocks);
        w.WriteNumber("cpu_pool_bytes", pool);
        w.WriteNumber("max_memory_fraction", o.MaxMemoryFraction);
        w.WriteBoolean("use_hugepage_cpu_buffer", o.UseHugepageCpuBuffer);
        w.WriteNumber("ssd_cache_gb", o.SsdCacheGb);
        w.WriteStartArray("ssd_dirs");
        if (ssd)
            foreach (string d in o.SsdCacheDir.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                w.WriteStringValue(d);
        w.WriteEndArray();
        w.WriteNumber("ssd_slots", ssd ? SsdInspector.SlotsFor(o) : 0);
        w.WriteNumber("ssd_slot_bytes", SsdInspector.ExtentOf(bb));
        w.WriteBoolean("ssd_direct_io", o.SsdDirectIo);
        w.WriteBoolean("ssd_persist", o.SsdPersist);
        w.WriteString("remote_url", Redaction.RedactUrl(EngineOptionsValidator.ResolveRemoteUrl(o)));
        w.WriteNumber("tp_size", o.TpSize);
        w.WriteNumber("tp_rank", o.TpRank);
        w.WriteString("model_name", o.ModelName);
        w.WriteString("dtype", o.Dtype);
        w.WriteString("layout", o.Layout);
        w.WriteBoolean("use_mla", o.UseMla);
        w.WriteBoolean("secret_set", o.Secret.Length > 0);
        w.WriteString("fingerprint", CacheFingerprint.From(o).Value.ToString("x32", CultureInfo.InvariantCulture));
        w.WriteEndObject();
    }
}
