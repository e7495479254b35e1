using System.Runtime.InteropServices;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Transfer;

public unsafe class TransferEngineTests
{
    private static TransferTask Task(TransferKind kind, int blocks)
    {
        var t = new TransferTask { Kind = kind, RequestId = "r" };
        for (int i = 0; i < blocks; i++) t.Add(i, i, i);
        return t;
    }

    private static TransferTask WaitOne(TransferEngine engine)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        TransferTask? done;
        while (!engine.Completed.TryDequeue(out done))
        {
            Assert.True(sw.ElapsedMilliseconds < 10_000, "no completion");
            engine.WaitForCompletion(engine.CompletionCount, 50);
        }
        return done;
    }

    [Fact]
    public void Submit_NoTransport_FailsEveryBlockAndStillCompletes()
    {
        using var engine = new TransferEngine(2, 16, null, 0);
        TransferTask task = Task(TransferKind.Get, 5);

        engine.Submit(task);

        Assert.Same(task, WaitOne(engine));
        Assert.Equal(5, task.FailedCount);
        Assert.All(task.Failed.AsSpan(0, 5).ToArray(), f => Assert.Equal(1, f));
    }

    [Fact]
    public void Submit_OddBlockCount_CopiesEveryBlockExactlyOnceAcrossThreads()
    {
        using var device = new DeviceKvCache(numBlocks: 7);
        byte* host = (byte*)NativeMemory.AllocZeroed((nuint)(7 * device.BlockBytes));
        try
        {
            for (int b = 0; b < 7; b++) device.Fill(b, 30 + b);
            var transport = new FlakyTransport(KvLayout.Create(device.Layers, 7, device.BlockBytes));
            using var engine = new TransferEngine(3, 16, host, device.BlockBytes) { Transport = transport, MinSliceBytes = 1 };
            TransferTask task = Task(TransferKind.Put, 7);

            engine.Submit(task);

            Assert.Same(task, WaitOne(engine));
            Assert.Equal(0, task.FailedCount);
            Assert.Equal(3, transport.Calls); // one call per slice: 7 blocks over 3 threads
            Assert.Equal(7 * device.BlockBytes, engine.BytesMoved);
            for (int b = 0; b < 7; b++)
                Assert.Equal(device.Pattern(30 + b), new Span<byte>(host + b * device.BlockBytes, (int)device.BlockBytes).ToArray());
        }
        finally
        {
            NativeMemory.Free(host);
        }
    }

    [Fact]
    public void Submit_TaskSmallerThanTwoSlices_RunsAsOneSliceAndLargerOnesSplit()
    {
        using var device = new DeviceKvCache(numBlocks: 8);
        byte* host = (byte*)NativeMemory.AllocZeroed((nuint)(8 * device.BlockBytes));
        try
        {
            var transport = new FlakyTransport(KvLayout.Create(device.Layers, 8, device.BlockBytes));
            // Slices of at least 3 blocks: 2 blocks take one thread, 8 blocks two (not three) of the three threads.
            using var engine = new TransferEngine(3, 16, host, device.BlockBytes)
                { Transport = transport, MinSliceBytes = 3 * device.BlockBytes };

            engine.Submit(Task(TransferKind.Get, 2));
            Assert.Equal(0, WaitOne(engine).FailedCount);
            Assert.Equal(1, transport.Calls);
            engine.Submit(Task(TransferKind.Get, 8));
            Assert.Equal(0, WaitOne(engine).FailedCount);
            Assert.Equal(1 + 2, transport.Calls);
        }
        finally
        {
            NativeMemory.Free(host);
        }
    }

    [Fact]
    public void Submit_CancelledBeforeRunning_CopiesNothingButCompletes()
    {
        using var device = new DeviceKvCache(numBlocks: 4);
        var transport = new FlakyTransport(KvLayout.Create(device.Layers, 4, device.BlockBytes));
        using var engine = new TransferEngine(1, 16, null, device.BlockBytes) { Transport = transport };
        TransferTask task = Task(TransferKind.Get, 4);
        task.Cancel();

        engine.Submit(task);

        Assert.Same(task, WaitOne(engine));
        Assert.Equal(0, transport.Calls);
    }

    [Fact]
    public void Stop_IdleThreads_JoinsThem()
    {
        var engine = new TransferEngine(2, 16, null, 0);

        Assert.True(engine.Stop(5_000));
    }

    /// <summary>A transport whose copies wait until released (a copy still running).</summary>
    private sealed class HeldTransport(KvLayout layout) : IDeviceTransport
    {
        public readonly ManualResetEventSlim Entered = new(), Release = new();

        public KvLayout Layout => layout;

        public int Copy(TransferDirection d, ReadOnlySpan<int> blocks, ReadOnlySpan<int> slots, byte* host, long stride, Span<byte> failed)
        {
            Entered.Set();
            Release.Wait(10_000);
            return 0;
        }
    }

    [Fact]
    public void DrainedEpoch_ReachesAReplacementOnlyAfterTheCopiesUsingTheOldTransportEnded()
    {
        using var device = new DeviceKvCache(numBlocks: 4);
        var held = new HeldTransport(KvLayout.Create(device.Layers, 4, device.BlockBytes));
        using var engine = new TransferEngine(2, 16, null, device.BlockBytes) { Transport = held };
        engine.Submit(Task(TransferKind.Put, 1));
        Assert.True(held.Entered.Wait(10_000));

        engine.Transport = new FlakyTransport(held.Layout); // replaced while a copy still uses it
        long replacedAt = engine.Epoch;

        Assert.True(engine.DrainedEpoch < replacedAt);
        held.Release.Set();
        WaitOne(engine);
        Assert.True(engine.DrainedEpoch >= replacedAt);
    }
}
