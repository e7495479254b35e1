using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using StackExchange.Redis;

namespace FlexKv.Redis;

/// <summary>
/// Turns <c>remote_url</c> (comma-separated <c>redis://[user[:password]@]host:port[/db]</c>,
/// <c>rediss://</c> for TLS; several URLs = the nodes of a cluster) and the password options into
/// StackExchange.Redis options that never block start-up on an unreachable server.
/// </summary>
internal static class RedisEndpoints
{
    public static ConfigurationOptions Parse(EngineOptions o)
    {
        string spec = EngineOptionsValidator.ResolveRemoteUrl(o);
        var cfg = new ConfigurationOptions
        {
            AbortOnConnectFail = false, // start without Redis; reconnect in the background
            ConnectTimeout = o.RemoteTimeoutMs,
            SyncTimeout = o.RemoteTimeoutMs,
            AsyncTimeout = o.RemoteTimeoutMs,
            ConnectRetry = 1,
            KeepAlive = 10,
            ClientName = "flexkv",
        };
        string[] urls = spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (int i = 0; i < urls.Length; i++)
        {
            string raw = urls[i];
            // The message shows the whole list redacted, not this entry: a ',' inside a password
            // splits it, and the fragment alone would not be recognised as a password.
            if (!Uri.TryCreate(raw, UriKind.Absolute, out Uri? uri) || (uri.Scheme != "redis" && uri.Scheme != "rediss") || uri.Port <= 0)
                throw new FlexKvException(FlexKvStatus.InvalidConfig,
                    $"configuration key 'remote_url': entry {i + 1} of '{Redaction.RedactUrl(spec)}' is not redis://host:port or rediss://host:port");
            cfg.EndPoints.Add(uri.Host, uri.Port);
            if (uri.Scheme == "rediss") cfg.Ssl = true;
            if (!string.IsNullOrEmpty(uri.UserInfo))
            {
                string[] parts = uri.UserInfo.Split(':', 2);
                if (parts.Length == 2)
                {
                    if (parts[0].Length > 0) cfg.User = Uri.UnescapeDataString(parts[0]);
                    cfg.Password = Uri.UnescapeDataString(parts[1]);
                }
                else cfg.Password = Uri.UnescapeDataString(parts[0]);
            }
            string path = uri.AbsolutePath.Trim('/');
            if (path.Length > 0 && int.TryParse(path, out int db)) cfg.DefaultDatabase = db;
        }
        if (o.RedisPassword.Length > 0) cfg.Password = o.RedisPassword;
        if (o.RemoteUser.Length > 0) cfg.User = o.RemoteUser;
        return cfg;
    }
}
