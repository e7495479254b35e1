using System.Text;

namespace FlexKv.Core.Config;

/// <summary>
/// Masks credentials in text that may reach a log line, a stats document or an exception
/// message: the password of <c>redis://user:password@host</c> URLs and known secret values.
/// The Python package does the same (<c>flexkv.config.redact_url</c>); both follow one rule.
/// </summary>
internal static class Redaction
{
    /// <summary>What a masked password is replaced with.</summary>
    public const string Mask = "***";

    /// <summary>
    /// <paramref name="spec"/> (one URL or a comma-separated list) with every password replaced by
    /// <see cref="Mask"/>. Malformed input is masked too: within each URL everything between
    /// "://" and the last '@' is user information, so a password holding '@', ',' or "://" never
    /// leaks in part. A lone user-information part (<c>redis://secret@host</c>) is a password.
    /// </summary>
    public static string RedactUrl(string? spec)
    {
        if (string.IsNullOrEmpty(spec)) return spec ?? "";
        var sb = new StringBuilder(spec.Length);
        int start = 0;
        foreach (int next in UrlStarts(spec))
        {
            if (next > start) sb.Append(RedactOne(spec[start..next]));
            start = next;
        }
        sb.Append(RedactOne(spec[start..]));
        return sb.ToString();
    }

    /// <summary><paramref name="text"/> with every occurrence of <paramref name="secret"/> replaced by <see cref="Mask"/>.</summary>
    public static string Scrub(string? text, string? secret) =>
        string.IsNullOrEmpty(text) || string.IsNullOrEmpty(secret) ? text ?? "" : text.Replace(secret, Mask, StringComparison.Ordinal);

    // Where a new URL of a list begins: just after a ',' followed (after blanks) by "scheme://".
    // A ',' not followed by a scheme belongs to the current URL (it may be part of its password).
    private static IEnumerable<int> UrlStarts(string spec)
    {
        for (int i = 0; i < spec.Length; i++)
        {
            if (spec[i] != ',') continue;
            int j = i + 1;
            while (j < spec.Length && char.IsWhiteSpace(spec[j])) j++;
            int k = j;
            while (k < spec.Length && (char.IsAsciiLetterOrDigit(spec[k]) || spec[k] is '+' or '.' or '-')) k++;
            if (k > j && char.IsAsciiLetter(spec[j]) && string.CompareOrdinal(spec, k, "://", 0, 3) == 0) yield return i + 1;
        }
    }

    private static string RedactOne(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        int from = scheme < 0 ? 0 : scheme + 3;
        int at = url.LastIndexOf('@');
        if (at < from) return MaskQuery(url);
        string userInfo = url[from..at];
        int colon = userInfo.IndexOf(':');
        string masked = colon < 0 ? Mask : userInfo[..colon] + ":" + Mask;
        return url[..from] + masked + MaskQuery(url[at..]);
    }

    // "?password=..." style parameters (not understood by the engine, but users try them).
    private static string MaskQuery(string s)
    {
        int q = s.IndexOf('?');
        if (q < 0) return s;
        string[] parts = s[(q + 1)..].Split('&');
        for (int i = 0; i < parts.Length; i++)
        {
            int eq = parts[i].IndexOf('=');
            string name = eq < 0 ? parts[i] : parts[i][..eq];
            if (eq >= 0 && name.ToLowerInvariant() is "password" or "pass" or "pwd" or "auth" or "secret")
                parts[i] = name + "=" + Mask;
        }
        return s[..(q + 1)] + string.Join('&', parts);
    }
}
