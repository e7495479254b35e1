using System.Text;
using FlexKv.Core.Transfer;
using FlexKv.Native.Exports;

namespace FlexKv.Core.Tests.Native;

/// <summary>
/// The C ABI called in-process through unmanaged function pointers, exactly as C would call it
/// (the [UnmanagedCallersOnly] methods cannot be called directly from managed code).
/// </summary>
internal static unsafe class NativeApi
{
    public static readonly delegate* unmanaged<int*, int> AbiVersion = &CommonExports.GetAbiVersion;
    public static readonly delegate* unmanaged<byte*, nuint, nuint*, int> LastError = &CommonExports.GetLastError;

    public static readonly delegate* unmanaged<byte*, nuint, ulong*, int> EngineCreate = &EngineExports.Create;
    public static readonly delegate* unmanaged<ulong, int> EngineDestroy = &EngineExports.Destroy;
    public static readonly delegate* unmanaged<ulong, int> EngineShutdown = &EngineExports.Shutdown;
    public static readonly delegate* unmanaged<ulong, KvLayerDesc*, nuint, int, int> RegisterKvCaches = &EngineExports.RegisterKvCaches;
    public static readonly delegate* unmanaged<ulong, int> Reset = &EngineExports.Reset;
    public static readonly delegate* unmanaged<ulong, byte*, nuint, nuint*, int> Stats = &EngineExports.Stats;
    public static readonly delegate* unmanaged<ulong, int, int*, int> Wait = &EngineExports.Wait;

    public static readonly delegate* unmanaged<ulong, byte*, nuint, long*, nuint, int, byte*, nuint, int*, int> GetNumNewMatchedTokens =
        &RequestExports.GetNumNewMatchedTokens;
    public static readonly delegate* unmanaged<ulong, byte*, nuint, int*, nuint, int, int> UpdateStateAfterAlloc =
        &RequestExports.UpdateStateAfterAlloc;
    public static readonly delegate* unmanaged<ulong, byte*, nuint, long*, nuint, int*, nuint, int, byte*, nuint, int*, int> RequestFinished =
        &RequestExports.RequestFinished;
    public static readonly delegate* unmanaged<ulong, byte*, nuint, int> CancelRequest = &RequestExports.CancelRequest;
    public static readonly delegate* unmanaged<ulong, int*, int> LaunchTasks = &RequestExports.LaunchTasks;
    public static readonly delegate* unmanaged<ulong, byte*, nuint, nuint*, int*, nuint, nuint*, int> QueryFinishedTask =
        &RequestExports.QueryFinishedTask;

    public static readonly delegate* unmanaged<int, long, ulong*, int> IndexCreate = &IndexExports.Create;
    public static readonly delegate* unmanaged<ulong, int> IndexDestroy = &IndexExports.Destroy;
    public static readonly delegate* unmanaged<ulong, long, long*, nuint, int*, int> IndexMatch = &IndexExports.Match;
    public static readonly delegate* unmanaged<ulong, long, long*, nuint, int*, int> IndexInsert = &IndexExports.Insert;
    public static readonly delegate* unmanaged<ulong, long*, long*, int> IndexInfo = &IndexExports.Info;
    public static readonly delegate* unmanaged<ulong, long*, nuint, long*, long*, nuint, int*, long*, int> IndexReplay = &IndexExports.Replay;

    public const int Ok = 0, InvalidArgument = -1, InvalidHandle = -2, InvalidConfig = -3, BufferTooSmall = -4,
        UnknownRequest = -5, InvalidState = -6, ShutDown = -9;

    /// <summary>The calling thread's last error message, read with a large enough buffer.</summary>
    public static string LastErrorText()
    {
        nuint needed;
        var buf = new byte[4096];
        fixed (byte* p = buf)
        {
            Assert.Equal(Ok, LastError(p, (nuint)buf.Length, &needed));
        }
        Assert.Equal(0, buf[(int)needed - 1]);
        return Encoding.UTF8.GetString(buf, 0, (int)needed - 1);
    }

    public static int Create(string json, out ulong engine)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(json);
        fixed (byte* p = utf8)
        fixed (ulong* e = &engine)
            return EngineCreate(p, (nuint)utf8.Length, e);
    }

    public static int Launch(ulong engine)
    {
        int launched;
        Assert.Equal(Ok, LaunchTasks(engine, &launched));
        return launched;
    }

    public static int Match(ulong engine, string id, long[] tokens, int numComputed = 0)
    {
        byte[] idBytes = Encoding.UTF8.GetBytes(id);
        int matched = -1;
        fixed (byte* i = idBytes)
        fixed (long* t = tokens)
            Assert.Equal(Ok, GetNumNewMatchedTokens(engine, i, (nuint)idBytes.Length, t, (nuint)tokens.Length, numComputed, null, 0, &matched));
        return matched;
    }

    public static int Finish(ulong engine, string id, long[] tokens, int[] blocks, bool save, out int hold)
    {
        byte[] idBytes = Encoding.UTF8.GetBytes(id);
        fixed (byte* i = idBytes)
        fixed (long* t = tokens)
        fixed (int* b = blocks)
        fixed (int* h = &hold)
            return RequestFinished(engine, i, (nuint)idBytes.Length, t, (nuint)tokens.Length, b, (nuint)blocks.Length, save ? 1 : 0, null, 0, h);
    }

    public static int Alloc(ulong engine, string id, int[] blocks, int external)
    {
        byte[] idBytes = Encoding.UTF8.GetBytes(id);
        fixed (byte* i = idBytes)
        fixed (int* b = blocks)
            return UpdateStateAfterAlloc(engine, i, (nuint)idBytes.Length, b, (nuint)blocks.Length, external);
    }

    /// <summary>Waits (bounded) until flexkv_wait says something can be queried.</summary>
    public static void WaitReady(ulong engine)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int ready = 0;
        while (ready == 0)
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, "nothing finished");
            Assert.Equal(Ok, Wait(engine, 50, &ready));
        }
    }

    /// <summary>Decodes flexkv_query_finished_task's entry records.</summary>
    public static List<(int Kind, string Id)> DecodeEntries(ReadOnlySpan<byte> entries)
    {
        var list = new List<(int, string)>();
        int o = 0;
        while (o < entries.Length)
        {
            int len = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(entries[(o + 1)..]);
            list.Add((entries[o], Encoding.UTF8.GetString(entries.Slice(o + 5, len))));
            o += 5 + len;
        }
        return list;
    }

    public static string EngineConfig(long blockBytes, int cpuBlocks = 64) =>
        $"{{\"num_cpu_blocks\":{cpuBlocks},\"block_bytes\":{blockBytes},\"tokens_per_block\":4,\"transfer_threads\":2,\"use_hugepage_cpu_buffer\":false}}";
}
