using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using FlexKv.Native.Marshalling;
using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

public unsafe class QueryFinishedExportTests
{
    [Fact]
    public void QueryFinishedTask_EntryBufferTooSmall_ReportsSizesAndLosesNothing()
    {
        using var e = new NativeEngine();
        e.Save("request-A", Engine.EngineHarness.Tokens(9));

        nuint length = 0, count = 99;
        var small = new byte[4];
        fixed (byte* p = small)
            Assert.Equal(BufferTooSmall, QueryFinishedTask(e.Handle, p, (nuint)small.Length, &length, null, 0, &count));
        Assert.Equal((nuint)(5 + "request-A".Length), length);
        Assert.Equal((nuint)0, count);
        Assert.Contains("nothing was taken", LastErrorText());

        var (entries, failed) = e.Query();
        Assert.Equal([(2, "request-A")], entries);
        Assert.Empty(failed);
        Assert.Empty(e.Query().Entries); // handed out once
    }

    [Fact]
    public void QueryFinishedTask_FailedBufferTooSmall_ReportsCountAndLosesNothing()
    {
        using var e = new NativeEngine();
        long[] tokens = Engine.EngineHarness.Tokens(17);
        e.Save("A", tokens);
        e.Query();
        // Fault injection behind the C ABI: the handle's engine gets a flaky transport.
        var flaky = new FlakyTransport(KvLayout.Create(e.Device.Layers, e.Device.NumBlocks, e.Device.BlockBytes));
        HandleTable.Get<KvEngine>(e.Handle).Devices.RegisterTransport(flaky);
        flaky.FailBlocks(11, 12);
        Assert.Equal(16, Match(e.Handle, "B", tokens));
        Assert.Equal(Ok, Alloc(e.Handle, "B", [10, 11, 12, 13, 14], 16));
        Assert.Equal(1, Launch(e.Handle));
        WaitReady(e.Handle);

        var entries = new byte[256];
        int oneFailed;
        nuint length, count;
        fixed (byte* p = entries)
            Assert.Equal(BufferTooSmall, QueryFinishedTask(e.Handle, p, (nuint)entries.Length, &length, &oneFailed, 1, &count));
        Assert.Equal((nuint)2, count);
        Assert.Equal((nuint)6, length);

        var (got, failed) = e.Query();
        Assert.Equal([(1, "B")], got);
        Assert.Equal([11, 12], failed.Order());
    }

    [Fact]
    public void QueryFinishedTask_NothingFinished_ReturnsOkWithZeroSizes()
    {
        using var e = new NativeEngine();
        nuint length = 7, count = 7;

        Assert.Equal(Ok, QueryFinishedTask(e.Handle, null, 0, &length, null, 0, &count));

        Assert.Equal((nuint)0, length);
        Assert.Equal((nuint)0, count);
    }

    [Fact]
    public void QueryFinishedTask_NullSizePointersOrBuffers_ReturnInvalidArgument()
    {
        using var e = new NativeEngine();
        nuint length, count;

        Assert.Equal(InvalidArgument, QueryFinishedTask(e.Handle, null, 0, null, null, 0, &count));
        Assert.Equal(InvalidArgument, QueryFinishedTask(e.Handle, null, 0, &length, null, 0, null));
        Assert.Equal(InvalidArgument, QueryFinishedTask(e.Handle, null, 16, &length, null, 0, &count));
        Assert.Contains("entries", LastErrorText());
    }
}
