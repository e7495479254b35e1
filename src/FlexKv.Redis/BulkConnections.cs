using StackExchange.Redis;

namespace FlexKv.Redis;

/// <summary>
/// Connections that carry block values (GET/SET), apart from the one that carries presence
/// checks: a multiplexer writes its commands one after another on one socket, so a lookup
/// would wait behind megabytes of values, and one socket moves large values at about half of
/// what two do on loopback (redis-benchmark: 2 MiB GETs 1.7 GB/s with one connection, 3.2 with
/// two). They connect in the background (start-up never waits for them) and reconnect by
/// themselves; until one is up, its share goes over the main connection.
/// </summary>
internal sealed class BulkConnections : IDisposable
{
    private readonly Task<ConnectionMultiplexer>[] _connecting;
    private readonly IDatabase _fallback;

    public BulkConnections(ConfigurationOptions cfg, int count, IDatabase fallback)
    {
        _fallback = fallback;
        _connecting = new Task<ConnectionMultiplexer>[count];
        for (int i = 0; i < count; i++)
        {
            ConfigurationOptions c = cfg.Clone();
            c.ClientName = $"{cfg.ClientName}-bulk{i}";
            _connecting[i] = ConnectionMultiplexer.ConnectAsync(c);
        }
    }

    /// <summary>Connections that carry values.</summary>
    public int Count => _connecting.Length;

    /// <summary>The database to send value <paramref name="i"/> of a batch over (round robin).</summary>
    public IDatabase For(int i)
    {
        Task<ConnectionMultiplexer> t = _connecting[i % _connecting.Length];
        return t.IsCompletedSuccessfully && t.Result.IsConnected ? t.Result.GetDatabase() : _fallback;
    }

    public void Dispose()
    {
        // A connection still being made is closed once it is made: closing never waits for it.
        foreach (Task<ConnectionMultiplexer> t in _connecting)
            t.ContinueWith(static c => c.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default);
    }
}
