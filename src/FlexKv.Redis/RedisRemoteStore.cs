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
/// Values travel over <see cref="ValueConnections"/> connections of their own
/// (<see cref="BulkConnections"/>), spread round robin, so a batch has several in flight at
/// once and presence checks never queue behind them; each value is taken as it arrives
/// (checked and copied into its CPU slot while the later ones are still on the wire).
/// </summary>
internal sealed unsafe class RedisRemoteStore : IRemoteStore
{
    /// <summary>
    /// Connections for values. redis-benchmark on this project's 2-core loopback: 2 MiB GETs
    /// 1.7 GB/s over one connection, 3.0-3.2 over two, 2.0 over four; SETs 1.45, 1.2-1.5, 1.67.
    /// Through the tier (sealing, checking and copying every value on the same cores) one to
    /// four measured within noise of each other, two a little ahead.
    /// </summary>
    public const int ValueConnections = 2;
    private readonly ConnectionMultiplexer _mux;
    private readonly IDatabase _db;
    private readonly BulkConnections _values;
    private readonly DirectValueReader? _direct; // GETs into the CPU slots (one plain server)
    // Per batch, reused: the reader and the writer thread each call one of Get and Put at a time.
    private Task<Lease<byte>?>[] _gets = [];
    private Task<bool>[] _sets = [];
    private byte[][] _rented = [];
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
        _values = new BulkConnections(cfg, ValueConnections, _db);
        if (cfg.EndPoints.Count == 1 && !cfg.Ssl)
            _direct = new DirectValueReader(cfg.EndPoints[0], cfg.User, cfg.Password, cfg.DefaultDatabase ?? 0, _timeoutMs);
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
    public int Connections => _values.Count;

    /// <inheritdoc />
    public long DirectReadBatches => _direct?.Batches ?? 0;

    /// <inheritdoc />
    public int ReadConnections => _direct is { Disabled: false } ? 1 : Connections;

    /// <inheritdoc />
    public int ReadWindow(int bytes) => _direct is { Disabled: false } ? DirectValueReader.DepthFor(bytes) : Window(bytes);

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

    /// <summary>
    /// Values in flight at once: <see cref="Connections"/> times the pipelining depth a value of
    /// <paramref name="bytes"/> gets on one connection (up to 1 MiB of values each: Redis 7.0 and
    /// StackExchange.Redis handle several pipelined multi-MiB values on one connection badly).
    /// </summary>
    public int Window(int bytes) => _values.Count * DepthFor(bytes);

    /// <summary>Values in flight on one connection.</summary>
    public static int DepthFor(int bytes) => (int)Math.Clamp((1L << 20) / Math.Max(1, bytes), 1, 64);

    /// <inheritdoc />
    public void Put(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<bool> ok)
    {
        int n = keys.Length, window = Window(bytes), issued = 0;
        if (_sets.Length < n)
        {
            _sets = new Task<bool>[n];
            _rented = new byte[n][];
        }
        long deadline = Environment.TickCount64 + _timeoutMs;
        for (int i = 0; i < n; i++)
        {
            // A sliding window: while value i is awaited the next ones are on the wire, and each
            // is sealed just before it is sent.
            for (; issued < n && issued < i + window; issued++) _sets[issued] = Set(keys[issued], buffers[issued], bytes, issued);
            Task<bool> t = _sets[i];
            WaitUntil(t, deadline);
            ok[i] = t.IsCompletedSuccessfully && t.Result;
            // A late command may still read its buffer: only completed ones go back to the pool.
            if (t.IsCompleted) ArrayPool<byte>.Shared.Return(_rented[i]);
            _sets[i] = null!;
            _rented[i] = null!;
        }
    }

    private Task<bool> Set(UInt128 key, nint buffer, int bytes, int i)
    {
        byte[] v = ArrayPool<byte>.Shared.Rent(bytes + BlockSeal.TagBytes);
        Seal(key, buffer, bytes, v);
        _rented[i] = v;
        var value = new ReadOnlyMemory<byte>(v, 0, bytes + BlockSeal.TagBytes);
        IDatabase db = _values.For(i);
        try
        {
            return _ttl is { } ttl ? db.StringSetAsync(Key(key), value, ttl) : db.StringSetAsync(Key(key), value);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return Task.FromException<bool>(e);
        }
    }

    /// <inheritdoc />
    public void Get(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results)
    {
        long deadline = Environment.TickCount64 + _timeoutMs;
        if (_direct is not null && _direct.TryGet(keys, buffers, bytes, results, _prefix, _seal, deadline)) return;
        int n = keys.Length, window = Window(bytes), issued = 0;
        if (_gets.Length < n) _gets = new Task<Lease<byte>?>[n];
        for (int i = 0; i < n; i++)
        {
            // A sliding window: value i is checked and copied into its CPU slot while the next
            // ones are on the wire.
            for (; issued < n && issued <= i + window; issued++) _gets[issued] = GetLease(keys[issued], issued);
            Task<Lease<byte>?> t = _gets[i];
            _gets[i] = null!;
            WaitUntil(t, deadline);
            if (!t.IsCompletedSuccessfully) { results[i] = RemoteReadResult.Unavailable; continue; }
            using Lease<byte>? lease = t.Result;
            results[i] = Verify(keys[i], lease, buffers[i], bytes);
        }
    }

    private Task<Lease<byte>?> GetLease(UInt128 key, int i)
    {
        try
        {
            return _values.For(i).StringGetLeaseAsync(Key(key));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return Task.FromException<Lease<byte>?>(e); // read as unavailable
        }
    }

    private static void WaitUntil(Task t, long deadline)
    {
        try
        {
            t.Wait((int)Math.Max(0, deadline - Environment.TickCount64));
        }
        catch (AggregateException)
        {
            // The outcome is read from the task.
        }
    }

    // value = bytes ‖ tag of (fingerprint, key, bytes)
    private void Seal(UInt128 key, nint buffer, int bytes, byte[] value)
    {
        var src = new ReadOnlySpan<byte>((void*)buffer, bytes);
        src.CopyTo(value);
        _seal.Seal(key, src, value.AsSpan(bytes, BlockSeal.TagBytes));
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
        _direct?.Dispose();
        _values.Dispose();
        _mux.Dispose();
        _seal.Dispose();
    }
}
