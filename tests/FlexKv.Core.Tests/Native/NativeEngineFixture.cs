using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

/// <summary>An engine created and registered through the exports, over a fake device cache.</summary>
internal sealed unsafe class NativeEngine : IDisposable
{
    public NativeEngine()
    {
        Device = new DeviceKvCache(32);
        Assert.Equal(Ok, Create(EngineConfig(Device.BlockBytes), out ulong handle));
        Handle = handle;
        fixed (KvLayerDesc* layers = Device.Layers)
            Assert.Equal(Ok, RegisterKvCaches(Handle, layers, (nuint)Device.Layers.Length, Device.NumBlocks));
    }

    public ulong Handle { get; }

    public DeviceKvCache Device { get; }

    /// <summary>Saves <paramref name="tokens"/> from device blocks 0.. and waits until it can be queried.</summary>
    public void Save(string id, long[] tokens)
    {
        int[] blocks = Enumerable.Range(0, (tokens.Length + 3) / 4).ToArray();
        Assert.Equal(Ok, Finish(Handle, id, tokens, blocks, save: true, out int hold));
        Assert.Equal(1, hold);
        Assert.Equal(1, Launch(Handle));
        WaitReady(Handle);
    }

    /// <summary>Queries with buffers big enough for anything these tests produce.</summary>
    public (List<(int Kind, string Id)> Entries, int[] Failed) Query()
    {
        var entries = new byte[4096];
        var failed = new int[256];
        nuint length, count;
        fixed (byte* e = entries)
        fixed (int* f = failed)
            Assert.Equal(Ok, QueryFinishedTask(Handle, e, (nuint)entries.Length, &length, f, (nuint)failed.Length, &count));
        return (DecodeEntries(entries.AsSpan(0, (int)length)), failed[..(int)count]);
    }

    public void Dispose()
    {
        Assert.Equal(Ok, EngineDestroy(Handle));
        Device.Dispose();
    }
}
