using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using FlexKv.Core.Hashing;
using FlexKv.Core.Tiers.Remote;
using FlexKv.Redis;

namespace FlexKv.Core.Tests.Tiers.Remote;

/// <summary>
/// The reader that receives Redis values straight into CPU slots, against a scripted RESP
/// server: replies are untrusted, so every malformed one must end as a miss, corrupt or
/// unavailable, never as bytes served, and a silent server must not hold a batch past its deadline.
/// </summary>
public sealed unsafe class DirectValueReaderTests : IDisposable
{
    private const int Bytes = 4096;
    private static readonly byte[] Prefix = "t:"u8.ToArray();
    private readonly BlockSeal _seal = new(7, null);
    private readonly nint _slots = (nint)NativeMemory.AllocZeroed(4 * Bytes);

    public void Dispose()
    {
        NativeMemory.Free((void*)_slots);
        _seal.Dispose();
    }

    // A server that answers the handshake, then each GET with what reply(key) gives (null: say nothing).
    private sealed class ScriptedServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Thread _thread;

        public ScriptedServer(Func<string, byte[]?> reply, bool cluster = false, string authReply = "+OK\r\n")
        {
            _listener.Start();
            _thread = new Thread(() => Serve(reply, cluster, Encoding.ASCII.GetBytes(authReply))) { IsBackground = true };
            _thread.Start();
        }

        public EndPoint EndPoint => _listener.LocalEndpoint;

        public List<string> Commands { get; } = new();

        private void Serve(Func<string, byte[]?> reply, bool cluster, byte[] authReply)
        {
            try
            {
                while (true)
                {
                    using TcpClient c = _listener.AcceptTcpClient();
                    using NetworkStream s = c.GetStream();
                    var r = new StreamReader(s, Encoding.ASCII);
                    while (ReadCommand(r) is { } cmd)
                    {
                        lock (Commands) Commands.Add(string.Join(' ', cmd));
                        byte[]? answer = cmd[0] switch
                        {
                            "INFO" => Bulk(Encoding.ASCII.GetBytes($"# Cluster\r\ncluster_enabled:{(cluster ? 1 : 0)}\r\n")),
                            "GET" => reply(cmd[1]),
                            "AUTH" => authReply,
                            _ => "+OK\r\n"u8.ToArray(),
                        };
                        if (answer is null) continue;
                        s.Write(answer);
                        if (answer.Length == 0) break; // close after this
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }

        private static string[]? ReadCommand(StreamReader r)
        {
            string? head = r.ReadLine();
            if (head is null || head[0] != '*') return null;
            var args = new string[int.Parse(head[1..])];
            for (int i = 0; i < args.Length; i++)
            {
                r.ReadLine();
                args[i] = r.ReadLine()!;
            }
            return args;
        }

        public void Dispose() => _listener.Stop();
    }

    private static byte[] Bulk(byte[] v) => [.. Encoding.ASCII.GetBytes($"${v.Length}\r\n"), .. v, .. "\r\n"u8];

    private static string KeyName(UInt128 key) => "t:" + key.ToString("x32");

    private byte[] Value(UInt128 key, byte fill)
    {
        var v = new byte[Bytes + BlockSeal.TagBytes];
        v.AsSpan(0, Bytes).Fill(fill);
        _seal.Seal(key, v.AsSpan(0, Bytes), v.AsSpan(Bytes));
        return v;
    }

    private RemoteReadResult[] Get(DirectValueReader reader, UInt128[] keys, int deadlineMs = 5000, bool expectUsed = true)
    {
        var results = new RemoteReadResult[keys.Length];
        var buffers = new nint[keys.Length];
        for (int i = 0; i < keys.Length; i++) buffers[i] = _slots + i * Bytes;
        bool used = reader.TryGet(keys, buffers, Bytes, results, Prefix, _seal, Environment.TickCount64 + deadlineMs);
        Assert.Equal(expectUsed, used);
        return results;
    }

    private Span<byte> Slot(int i) => new((void*)(_slots + i * Bytes), Bytes);

    [Fact]
    public void Values_AreReceivedIntoTheirSlots_AndMissingKeysAreMisses()
    {
        UInt128[] keys = [11, 12, 13];
        using var server = new ScriptedServer(k => k == KeyName(12) ? "$-1\r\n"u8.ToArray()
            : Bulk(Value(k == KeyName(11) ? (UInt128)11 : 13, k == KeyName(11) ? (byte)0xA1 : (byte)0xA3)));
        using var reader = new DirectValueReader(server.EndPoint, "user", "pw", 2, 5000);

        RemoteReadResult[] r = Get(reader, keys);

        Assert.Equal([RemoteReadResult.Ok, RemoteReadResult.Missing, RemoteReadResult.Ok], r);
        Assert.True(Slot(0).IndexOfAnyExcept((byte)0xA1) < 0);
        Assert.True(Slot(2).IndexOfAnyExcept((byte)0xA3) < 0);
        Assert.Equal(1, reader.Batches);
        Assert.Contains("AUTH user pw", server.Commands);
        Assert.Contains("SELECT 2", server.Commands);
    }

    [Fact]
    public void AValueStoredUnderAnotherKey_IsCorrupt()
    {
        using var server = new ScriptedServer(_ => Bulk(Value(99, 0x55)));
        using var reader = new DirectValueReader(server.EndPoint, null, null, 0, 5000);

        Assert.Equal([RemoteReadResult.Corrupt], Get(reader, [21]));
    }

    [Theory]
    [InlineData("$1099511627776\r\n")]   // far longer than a block: never read into the slot
    [InlineData("$4111\r\n")]            // one byte short of value and tag
    [InlineData("$abc\r\n")]
    [InlineData("-ERR wrong kind\r\n")]
    [InlineData("+OK\r\n")]
    public void AMalformedReply_EndsTheBatchWithoutServingBytes(string reply)
    {
        Slot(0).Fill(0x77);
        using var server = new ScriptedServer(_ => Encoding.ASCII.GetBytes(reply));
        using var reader = new DirectValueReader(server.EndPoint, null, null, 0, 5000);

        RemoteReadResult[] r = Get(reader, [31, 32]);

        Assert.DoesNotContain(RemoteReadResult.Ok, r);
        Assert.Equal(RemoteReadResult.Unavailable, r[1]);
        Assert.True(Slot(0).IndexOfAnyExcept((byte)0x77) < 0); // no byte of a bad reply reached the slot
        // After a failure the reader waits before connecting again: the store's other path is used.
        Assert.False(reader.TryGet([33], [_slots], Bytes, new RemoteReadResult[1], Prefix, _seal, Environment.TickCount64 + 1000));
    }

    [Fact]
    public void AValueCutShort_IsUnavailableAtTheDeadline()
    {
        byte[] whole = Bulk(Value(41, 1));
        using var server = new ScriptedServer(_ => whole[..(whole.Length / 2)]); // then the server stops answering
        using var reader = new DirectValueReader(server.EndPoint, null, null, 0, 5000);

        Assert.Equal([RemoteReadResult.Unavailable], Get(reader, [41], deadlineMs: 500));
    }

    [Fact]
    public void ASilentServer_CostsABatchNoMoreThanItsDeadline()
    {
        using var server = new ScriptedServer(_ => null);
        using var reader = new DirectValueReader(server.EndPoint, null, null, 0, 5000);
        var sw = System.Diagnostics.Stopwatch.StartNew();

        RemoteReadResult[] r = Get(reader, [51, 52], deadlineMs: 300);

        Assert.Equal([RemoteReadResult.Unavailable, RemoteReadResult.Unavailable], r);
        Assert.InRange(sw.ElapsedMilliseconds, 250, 3000);
    }

    [Fact]
    public void AClusterNode_IsLeftToTheClusterAwareClient()
    {
        using var server = new ScriptedServer(_ => Bulk(Value(61, 1)), cluster: true);
        using var reader = new DirectValueReader(server.EndPoint, null, null, 0, 5000);

        Get(reader, [61], expectUsed: false);
        Assert.Equal(0, reader.Batches);
    }

    [Fact]
    public void ARefusedPassword_LeavesTheValuesToTheOtherClientForGood()
    {
        using var server = new ScriptedServer(_ => Bulk(Value(71, 1)), authReply: "-WRONGPASS invalid username-password pair\r\n");
        using var reader = new DirectValueReader(server.EndPoint, null, "pw", 0, 5000);

        Get(reader, [71], expectUsed: false);
        Thread.Sleep(1100); // past the retry wait: still not used
        Get(reader, [71], expectUsed: false);
        Assert.Single(server.Commands, c => c.StartsWith("AUTH", StringComparison.Ordinal));
    }

    [Fact]
    public void AnUnreachableServer_LeavesTheValuesToTheOtherClient()
    {
        var free = new TcpListener(IPAddress.Loopback, 0);
        free.Start();
        EndPoint nobody = free.LocalEndpoint;
        free.Stop(); // nothing listens there now
        using var reader = new DirectValueReader(nobody, null, null, 0, 300);

        Get(reader, [81], expectUsed: false);
    }
}
