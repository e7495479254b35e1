using System.Globalization;
using System.Text.Json;
using FlexKv.Core.Config;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The cache fingerprint's fields in plain text beside the journal (<c>flexkv-cache.json</c>):
/// the journal keeps only the fingerprint's hash, and whoever looks at a cache directory
/// (<c>flexkv inspect</c>) wants to know which model and settings wrote it. The secret is never
/// written, only whether one is set. The engine never reads the label: the journal's
/// fingerprint alone decides whether blocks are reused, so a stale or edited label changes
/// nothing but what is shown (the inspector shows it only when its fingerprint is the journal's).
/// </summary>
internal static class SsdCacheLabel
{
    public const string FileName = "flexkv-cache.json";

    /// <summary>Writes the label into <paramref name="directory"/> (0600, replaced whole); false with <paramref name="why"/> when it could not.</summary>
    public static bool TryWrite(string directory, EngineOptions o, UInt128 fingerprint, out string? why)
    {
        why = null;
        byte[] json = Json(o, fingerprint);
        try
        {
            using var h = DurableFile.Replace(Path.Combine(directory, FileName), f =>
            {
                RandomAccess.Write(f, json, 0);
                return json.Length;
            }, out _);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = e.Message;
            return false;
        }
    }

    private static byte[] Json(EngineOptions o, UInt128 fingerprint)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("fingerprint", fingerprint.ToString("x32", CultureInfo.InvariantCulture));
            w.WriteString("model_name", o.ModelName);
            w.WriteString("dtype", o.Dtype.ToLowerInvariant());
            w.WriteString("layout", o.Layout);
            w.WriteString("attention", o.UseMla ? "mla" : "mha");
            w.WriteNumber("tp_rank", o.TpRank);
            w.WriteNumber("tp_size", o.TpSize);
            w.WriteNumber("tokens_per_block", o.TokensPerBlock);
            w.WriteNumber("block_bytes", EngineOptionsValidator.ResolveBlockBytes(o));
            w.WriteBoolean("secret_set", !string.IsNullOrEmpty(o.Secret));
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
