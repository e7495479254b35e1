using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FlexKv.Core.Hashing;
using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Redis;

/// <summary>
/// GETs of block values over a RESP connection of its own that receives each value straight
/// into its CPU slot. StackExchange.Redis hands a value over in a buffer of its own, so every
/// byte would be copied twice more on the client's side; on a 2-core machine that, not the
/// network, is what limits remote loads. Only a plain TCP connection to one server is used
/// (TLS and clusters go through StackExchange.Redis). The bytes land in the slot before their
/// seal is checked: a value that fails is reported corrupt and its slot is never made readable,
/// as with any failed load. Replies are untrusted: a length other than the block's, an error
/// reply or anything malformed closes the connection (the rest of the batch reads as
/// unavailable); the reader never reads more than the block's bytes into a slot. Used only by
/// the remote reader thread (one batch at a time); after a failure it waits a second before
/// connecting again, and the store uses StackExchange.Redis meanwhile.
/// </summary>
internal sealed unsafe class DirectValueReader : IDisposable
{
    private const int MaxInFlightBytes = 4 << 20; // values requested ahead of the one being read
    private const int RetryMs = 1000;
    private readonly EndPoint _endPoint;
    private readonly string? _user, _password;
    private readonly int _database;
    private readonly int _timeoutMs;
    private readonly byte[] _in = new byte[8 << 10]; // reply headers; values are received into their slots
    private int _inStart, _inEnd;
    private byte[] _out = new byte[16 << 10];
    private int _outLength;
    private Socket? _socket;
    private long _retryAt;
    private bool _disabled;

    public DirectValueReader(EndPoint endPoint, string? user, string? password, int database, int timeoutMs)
    {
        _endPoint = endPoint;
        _user = string.IsNullOrEmpty(user) ? null : user;
        _password = string.IsNullOrEmpty(password) ? null : password;
        _database = database;
        _timeoutMs = timeoutMs;
    }

    /// <summary>Batches read here (written by the reader thread, read by stats).</summary>
    public long Batches => Interlocked.Read(ref _batches);

    private long _batches;

    /// <summary>
    /// Reads the values of <paramref name="keys"/> into <paramref name="buffers"/> and fills
    /// <paramref name="results"/>; false (nothing read) when this reader cannot be used now.
    /// </summary>
    public bool TryGet(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results,
        ReadOnlySpan<byte> prefix, BlockSeal seal, long deadline)
    {
        if (_disabled || (_socket is null && !TryConnect(deadline))) return false;
        Interlocked.Increment(ref _batches);
        int n = keys.Length, valueBytes = bytes + BlockSeal.TagBytes;
        int depth = DepthFor(bytes), issued = 0, i = 0;
        Span<byte> tag = stackalloc byte[BlockSeal.TagBytes];
        try
        {
            for (; i < n; i++)
            {
                // A sliding window: while value i is received the next ones are being sent.
                if (issued < n && issued < i + depth)
                {
                    for (; issued < n && issued < i + depth; issued++) AppendGet(prefix, keys[issued]);
                    Send(deadline);
                }
                long length = ReadBulkLength(deadline);
                if (length < 0)
                {
                    results[i] = RemoteReadResult.Missing;
                    continue;
                }
                if (length != valueBytes) throw new InvalidDataException("a value of another length"); // never read into the slot
                var slot = new Span<byte>((void*)buffers[i], bytes);
                ReadExactly(slot, deadline);
                ReadExactly(tag, deadline);
                ExpectCrlf(deadline);
                results[i] = seal.Verify(keys[i], slot, tag) ? RemoteReadResult.Ok : RemoteReadResult.Corrupt;
            }
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidDataException or ObjectDisposedException or TimeoutException)
        {
            Close();
            _retryAt = Environment.TickCount64 + RetryMs;
            if (e is InvalidDataException && i < n) results[i++] = RemoteReadResult.Corrupt;
            for (; i < n; i++) results[i] = RemoteReadResult.Unavailable;
        }
        return true;
    }

    /// <summary>Values requested ahead on the connection for blocks of <paramref name="bytes"/>: up to 4 MiB.</summary>
    public static int DepthFor(int bytes) => (int)Math.Clamp(MaxInFlightBytes / Math.Max(1, bytes), 1, 64);

    /// <summary>Whether the server turned out to be one this reader leaves to StackExchange.Redis (a cluster, a refused handshake).</summary>
    public bool Disabled => _disabled;

    private bool TryConnect(long deadline)
    {
        if (Environment.TickCount64 < _retryAt) return false;
        var s = new Socket(_endPoint.AddressFamily == AddressFamily.Unspecified ? AddressFamily.InterNetwork : _endPoint.AddressFamily,
            SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var cts = new CancellationTokenSource(Math.Max(1, (int)Math.Min(_timeoutMs, deadline - Environment.TickCount64))))
                s.ConnectAsync(_endPoint, cts.Token).AsTask().GetAwaiter().GetResult();
            _socket = s;
            _inStart = _inEnd = 0;
            _outLength = 0;
            if (_password is not null) Command(deadline, _user is null ? ["AUTH", _password] : ["AUTH", _user, _password]);
            if (_database != 0) Command(deadline, "SELECT", _database.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Command(deadline, "CLIENT", "SETNAME", "flexkv-direct");
            AppendCommand("INFO", "cluster");
            Send(deadline);
            long length = ReadBulkLength(deadline);
            if (length is < 0 or > 4096) throw new InvalidDataException("an unexpected INFO reply");
            var info = new byte[length];
            ReadExactly(info, deadline);
            ExpectCrlf(deadline);
            if (info.AsSpan().IndexOf("cluster_enabled:1"u8) >= 0)
            {
                _disabled = true; // keys live on several nodes: StackExchange.Redis routes them
                Close();
                return false;
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidDataException or OperationCanceledException
                                      or ObjectDisposedException or TimeoutException)
        {
            if (_socket is null) s.Dispose();
            Close();
            _retryAt = Environment.TickCount64 + RetryMs;
            // The server answered but refused the handshake (an ACL without CLIENT, say): the
            // values go through StackExchange.Redis from now on, which connected with the same.
            if (e is InvalidDataException) _disabled = true;
            return false;
        }
    }

    // A command whose reply must be +OK (the password never appears in an exception).
    private void Command(long deadline, params string[] args)
    {
        AppendCommand(args);
        Send(deadline);
        ReadOnlySpan<byte> line = ReadLine(deadline);
        if (!line.SequenceEqual("+OK"u8)) throw new InvalidDataException($"the server refused {args[0]}");
    }

    private void AppendCommand(params string[] args)
    {
        AppendHeader((byte)'*', args.Length);
        foreach (string a in args)
        {
            byte[] b = Encoding.UTF8.GetBytes(a);
            AppendHeader((byte)'$', b.Length);
            Append(b);
            Append("\r\n"u8);
        }
    }

    private void AppendGet(ReadOnlySpan<byte> prefix, UInt128 key)
    {
        Append("*2\r\n$3\r\nGET\r\n"u8);
        AppendHeader((byte)'$', prefix.Length + 32);
        Append(prefix);
        Span<byte> hex = stackalloc byte[32];
        key.TryFormat(hex, out _, "x32", System.Globalization.CultureInfo.InvariantCulture);
        Append(hex);
        Append("\r\n"u8);
    }

    private void AppendHeader(byte kind, int value)
    {
        Span<byte> h = stackalloc byte[16];
        h[0] = kind;
        Utf8Formatter.TryFormat(value, h[1..], out int w);
        Append(h[..(1 + w)]);
        Append("\r\n"u8);
    }

    private void Append(ReadOnlySpan<byte> b)
    {
        if (_outLength + b.Length > _out.Length) Array.Resize(ref _out, Math.Max(2 * _out.Length, _outLength + b.Length));
        b.CopyTo(_out.AsSpan(_outLength));
        _outLength += b.Length;
    }

    private void Send(long deadline)
    {
        Socket s = _socket!;
        for (int sent = 0; sent < _outLength;)
        {
            s.SendTimeout = Remaining(deadline);
            sent += s.Send(_out, sent, _outLength - sent, SocketFlags.None);
        }
        _outLength = 0;
    }

    // "$<n>\r\n" → n (-1: the key is missing); an error reply or anything else is bad data.
    private long ReadBulkLength(long deadline)
    {
        ReadOnlySpan<byte> line = ReadLine(deadline);
        if (line.Length < 2 || line[0] != (byte)'$' || !Utf8Parser.TryParse(line[1..], out long n, out int used) || used != line.Length - 1 || n < -1)
            throw new InvalidDataException("not a bulk string reply");
        return n;
    }

    // One reply line without its CRLF, from the input buffer (valid until the next read).
    private ReadOnlySpan<byte> ReadLine(long deadline)
    {
        while (true)
        {
            int at = _in.AsSpan(_inStart, _inEnd - _inStart).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                ReadOnlySpan<byte> line = _in.AsSpan(_inStart, at);
                _inStart += at + 2;
                return line;
            }
            if (_inEnd - _inStart >= 1024) throw new InvalidDataException("a reply line too long"); // no header is this long
            Fill(deadline);
        }
    }

    private void ExpectCrlf(long deadline)
    {
        Span<byte> end = stackalloc byte[2];
        ReadExactly(end, deadline);
        if (!end.SequenceEqual("\r\n"u8)) throw new InvalidDataException("a value not followed by CRLF");
    }

    // What the input buffer holds goes first; the rest is received straight into the target.
    private void ReadExactly(Span<byte> target, long deadline)
    {
        int have = Math.Min(_inEnd - _inStart, target.Length);
        _in.AsSpan(_inStart, have).CopyTo(target);
        _inStart += have;
        for (int got = have; got < target.Length;)
        {
            _socket!.ReceiveTimeout = Remaining(deadline);
            int r = _socket.Receive(target[got..]);
            if (r == 0) throw new IOException("the server closed the connection");
            got += r;
        }
    }

    private void Fill(long deadline)
    {
        if (_inStart > 0)
        {
            _in.AsSpan(_inStart, _inEnd - _inStart).CopyTo(_in);
            _inEnd -= _inStart;
            _inStart = 0;
        }
        _socket!.ReceiveTimeout = Remaining(deadline);
        int r = _socket.Receive(_in.AsSpan(_inEnd));
        if (r == 0) throw new IOException("the server closed the connection");
        _inEnd += r;
    }

    private static int Remaining(long deadline)
    {
        long left = deadline - Environment.TickCount64;
        if (left <= 0) throw new TimeoutException("the remote read's deadline passed");
        return (int)Math.Min(left, int.MaxValue);
    }

    private void Close()
    {
        _socket?.Dispose();
        _socket = null;
        _inStart = _inEnd = 0;
    }

    public void Dispose() => Close();
}
