using System.IO.Hashing;
using System.Text;
using FlexKv.Core.Config;

namespace FlexKv.Core.Hashing;

/// <summary>
/// What makes two caches' bytes interchangeable: model, dtype, layout, TP shard, block size,
/// block bytes and an optional secret. It seeds every block key, so caches that differ in any
/// of these never share a key; persistent tiers store it and check it on open.
/// </summary>
internal sealed class CacheFingerprint
{
    private CacheFingerprint(string text)
    {
        Text = text;
        Value = XxHash128.HashToUInt128(Encoding.UTF8.GetBytes(text));
    }

    /// <summary>The canonical text the fingerprint hashes (also useful in error messages).</summary>
    public string Text { get; }

    /// <summary>The 128-bit fingerprint.</summary>
    public UInt128 Value { get; }

    /// <summary>Builds the fingerprint of an engine's options.</summary>
    public static CacheFingerprint From(EngineOptions o) => new(string.Join('\u001f',
        "flexkv-v1", o.ModelName, o.Dtype.ToLowerInvariant(), o.Layout, o.UseMla ? "mla" : "mha",
        o.TpRank.ToString(System.Globalization.CultureInfo.InvariantCulture),
        o.TpSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        o.TokensPerBlock.ToString(System.Globalization.CultureInfo.InvariantCulture),
        EngineOptionsValidator.ResolveBlockBytes(o).ToString(System.Globalization.CultureInfo.InvariantCulture),
        o.Secret));
}
