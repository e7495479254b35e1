using System.Buffers;
using System.Text;
using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Tiers.Remote;
using StackExchange.Redis;

namespace FlexKv.Redis;

/// <summary>
/// The remote tier on Redis/Valkey (single node or cluster) through StackExchange.Redis. Key =
/// prefix + fingerprint (hex) + ':' + block key (hex); value = the block's bytes followed by
/// their 16-byte <see cref="BlockSeal"/> tag, bound to the key and the fingerprint (and keyed
/// with the secret), so a value copied to another key, or chosen bytes with a hash anyone can
/// compute, is read as corrupt. Presence checks, reads and writes are pipelined and bounded in time; a server
/// that is down makes lookups miss and writes drop, and the multiplexer reconnects by itself.
/// </summary>
internal sealed unsafe class RedisRemoteStore : IRemoteStore
{
    private readonly ConnectionMultiplexer _mux;
    private readonly IDatabase _db;
    private readonly byte[] _prefix;
    private readonly TimeSpan? _ttl;
    private readonly int _timeoutMs;
    private readonly BlockSeal _seal;

    private RedisRemoteStore(EngineOptions o, UInt128 fingerprint)
    {
        ConfigurationOptions cfg = RedisEndpoints.Parse(o);
        _timeoutMs = o.RemoteTimeoutMs;
        _ttl = o.RemoteTtlSeconds > 0 ? TimeSpan.FromSeconds(o.RemoteTtlSeconds) : null;
        _prefix = Encoding.UTF8.GetBytes($"{o.RemotePrefix}{fingerprint:x32}:");
        _seal = new BlockSeal(fingerprint, o.Secret);
        ConnectionFailureType failure = ConnectionFailureType.None;
        string? failureMessage = null;
        // The connect log is kept only for this constructor (SE.Redis would otherwise hold it).
        var log = new StringWriter();
        _mux = ConnectionMultiplexer.Connect(cfg, log);
        string text = log.ToString();
        log.GetStringBuilder().Clear();
        _mux.ConnectionFailed += (_, e) => { failure = e.FailureType; failureMessage = e.Exception?.Message; };
        _db = _mux.GetDatabase();
        Description = string.Join(",", cfg.EndPoints.Select(e => e.ToString()));
        if (!_mux.IsConnected)
        {
            // A wrong password is a configuration error, not an outage: say so at once.
            if (failure == ConnectionFailureType.AuthenticationFailure || text.Contains("WRONGPASS", StringComparison.Ordinal)
                || text.Contains("NOAUTH", StringComparison.Ordinal) || text.Contains("invalid password", StringComparison.OrdinalIgnoreCase)
                || text.Contains("AuthenticationFailure", StringComparison.Ordinal))
            {
                _mux.Dispose();
                throw new FlexKvException(FlexKvStatus.InvalidConfig,
                    $"configuration key 'redis_password': Redis at {Description} refused the credentials " +
                    $"({(failureMessage is null ? "authentication failed" : Redaction.Scrub(failureMessage, cfg.Password))})");
            }
        }
    }

    /// <summary>The factory the engine calls when <c>remote_url</c> (or redis_port) is set.</summary>
    public static IRemoteStore Create(EngineOptions o, UInt128 fingerprint) => new RedisRemoteStore(o, fingerprint);

    /// <inheritdoc />
    public bool IsConnected => _mux.IsConnected;

    /// <inheritdoc />
    public string Description { get; }

    // Hex keys cost 16 bytes more than raw ones but stay readable in redis-cli and safe in SCAN patterns.
    private RedisKey Key(UInt128 block)
    {
        var k = new byte[_prefix.Length + 32];
        _prefix.CopyTo(k, 0);
        block.TryFormat(k.AsSpan(_prefix.Length), out _, "x32", System.Globalization.CultureInfo.InvariantCulture);
        return k;
    }

    /// <inheritdoc />
    public IRemoteLookup BeginCountPresent(ReadOnlySpan<UInt128> keys)
    {
        if (keys.IsEmpty || !_mux.IsConnected) return CompletedLookup.None;
        var tasks = new Task<bool>[keys.Length];
        for (int i = 0; i < keys.Length; i++) tasks[i] = _db.KeyExistsAsync(Key(keys[i]));
        return new PresenceLookup(tasks);
    }

    /// <inheritdoc />
    public void Put(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<bool> ok)
    {
        if (keys.Length == 1)
        {
            ok[0] = PutOne(keys[0], buffers[0], bytes);
            return;
        }
        var tasks = new Task<bool>[keys.Length];
        var rented = new byte[keys.Length][];
        for (int i = 0; i < keys.Length; i++)
        {
            byte[] v = ArrayPool<byte>.Shared.Rent(bytes + BlockSeal.TagBytes);
            Seal(keys[i], buffers[i], bytes, v);
            rented[i] = v;
            var value = new ReadOnlyMemory<byte>(v, 0, bytes + BlockSeal.TagBytes);
            tasks[i] = _ttl is { } ttl ? _db.StringSetAsync(Key(keys[i]), value, ttl) : _db.StringSetAsync(Key(keys[i]), value);
        }
        Wait(tasks);
        for (int i = 0; i < keys.Length; i++)
        {
            ok[i] = tasks[i].IsCompletedSuccessfully && tasks[i].Result;
            // A late command may still read its buffer: only completed ones go back to the pool.
            if (tasks[i].IsCompleted) ArrayPool<byte>.Shared.Return(rented[i]);
        }
    }

    /// <inheritdoc />
    public void Get(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results)
    {
        if (keys.Length == 1)
        {
            results[0] = GetOne(keys[0], buffers[0], bytes);
            return;
        }
        var tasks = new Task<Lease<byte>?>[keys.Length];
        for (int i = 0; i < keys.Length; i++) tasks[i] = _db.StringGetLeaseAsync(Key(keys[i]));
        Wait(tasks);
        for (int i = 0; i < keys.Length; i++)
        {
            if (!tasks[i].IsCompletedSuccessfully) { results[i] = RemoteReadResult.Unavailable; continue; }
            using Lease<byte>? lease = tasks[i].Result;
            results[i] = Verify(keys[i], lease, buffers[i], bytes);
        }
    }

    // value = bytes ‖ tag of (fingerprint, key, bytes)
    private void Seal(UInt128 key, nint buffer, int bytes, byte[] value)
    {
        var src = new ReadOnlySpan<byte>((void*)buffer, bytes);
        src.CopyTo(value);
        _seal.Seal(key, src, value.AsSpan(bytes, BlockSeal.TagBytes));
    }

    // One large value at a time: synchronous calls, no task per request.
    private bool PutOne(UInt128 key, nint buffer, int bytes)
    {
        byte[] v = ArrayPool<byte>.Shared.Rent(bytes + BlockSeal.TagBytes);
        try
        {
            Seal(key, buffer, bytes, v);
            var value = new ReadOnlyMemory<byte>(v, 0, bytes + BlockSeal.TagBytes);
            return _ttl is { } ttl ? _db.StringSet(Key(key), value, ttl) : _db.StringSet(Key(key), value);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(v);
        }
    }

    private RemoteReadResult GetOne(UInt128 key, nint buffer, int bytes)
    {
        try
        {
            using Lease<byte>? lease = _db.StringGetLease(Key(key));
            return Verify(key, lease, buffer, bytes);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return RemoteReadResult.Unavailable;
        }
    }

    // A value stored under another key (or by a writer without the secret) fails the seal: corrupt, never a hit.
    private RemoteReadResult Verify(UInt128 key, Lease<byte>? lease, nint buffer, int bytes)
    {
        if (lease is null) return RemoteReadResult.Missing;
        ReadOnlySpan<byte> v = lease.Span;
        if (v.Length != bytes + BlockSeal.TagBytes || !_seal.Verify(key, v[..bytes], v[bytes..]))
            return RemoteReadResult.Corrupt;
        v[..bytes].CopyTo(new Span<byte>((void*)buffer, bytes));
        return RemoteReadResult.Ok;
    }

    /// <inheritdoc />
    public void Delete(UInt128 key)
    {
        if (_mux.IsConnected) _db.KeyDelete(Key(key), CommandFlags.FireAndForget);
    }

    /// <inheritdoc />
    public long DeleteAll(int budgetMs)
    {
        if (!_mux.IsConnected) return 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        string pattern = GlobEscape(Encoding.UTF8.GetString(_prefix)) + "*";
        long deleted = 0;
        foreach (IServer server in _mux.GetServers())
        {
            if (server.IsReplica || !server.IsConnected) continue;
            var batch = new List<RedisKey>(256);
            foreach (RedisKey key in server.Keys(_db.Database, pattern, pageSize: 1000))
            {
                batch.Add(key);
                if (batch.Count == 256) { deleted += Unlink(batch); batch.Clear(); }
                if (sw.ElapsedMilliseconds > budgetMs) return deleted + Unlink(batch);
            }
            deleted += Unlink(batch);
        }
        return deleted;
    }

    private long Unlink(List<RedisKey> keys)
    {
        long n = 0;
        // One key per command: in a cluster, keys of one batch live on different slots.
        var tasks = keys.Select(k => _db.ExecuteAsync("UNLINK", k)).ToArray();
        Wait(tasks);
        foreach (var t in tasks) if (t.IsCompletedSuccessfully) n += (long)t.Result;
        return n;
    }

    private static string GlobEscape(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            if (c is '*' or '?' or '[' or ']' or '\\') b.Append('\\');
            b.Append(c);
        }
        return b.ToString();
    }

    private void Wait(Task[] tasks)
    {
        try
        {
            Task.WaitAll(tasks, _timeoutMs);
        }
        catch (AggregateException)
        {
            // Per-task outcomes are read by the caller.
        }
    }

    /// <summary>Closes the connections.</summary>
    public void Dispose()
    {
        _mux.Dispose();
        _seal.Dispose();
    }
}
