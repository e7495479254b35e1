using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

public unsafe class LastErrorExportTests
{
    private static void ProduceError()
    {
        Assert.Equal(InvalidArgument, AbiVersion(null));
    }

    [Fact]
    public void LastError_SmallBuffer_ReturnsBufferTooSmallAndTheNeededSize()
    {
        ProduceError();
        string message = LastErrorText();
        var buf = new byte[4];
        nuint needed = 0;

        fixed (byte* p = buf) Assert.Equal(BufferTooSmall, LastError(p, (nuint)buf.Length, &needed));

        Assert.Equal((nuint)System.Text.Encoding.UTF8.GetByteCount(message) + 1, needed);
        Assert.Equal(new byte[4], buf); // nothing partial written
    }

    [Fact]
    public void LastError_NullBufferZeroCapacity_ReportsTheSize()
    {
        ProduceError();
        nuint needed = 0;

        Assert.Equal(BufferTooSmall, LastError(null, 0, &needed));
        Assert.True(needed > 1);
    }

    [Fact]
    public void LastError_NullNeeded_ReturnsInvalidArgument()
    {
        var buf = new byte[256];
        fixed (byte* p = buf) Assert.Equal(InvalidArgument, LastError(p, (nuint)buf.Length, null));
    }

    [Fact]
    public void LastError_ReadTwice_DoesNotReplaceTheMessage()
    {
        ProduceError();
        nuint needed;
        LastError(null, 0, &needed); // a failed read must not record its own error

        Assert.Equal("version is null", LastErrorText());
        Assert.Equal("version is null", LastErrorText());
    }

    [Fact]
    public void LastError_PerThread_IsNotSeenByOtherThreads()
    {
        ProduceError();
        string? other = null;
        var t = new Thread(() =>
        {
            nuint needed;
            LastError(null, 0, &needed);
            other = needed == 1 ? "" : "leaked";
        });
        t.Start();
        t.Join();

        Assert.Equal("", other);
    }

    [Fact]
    public void AbiVersion_Always_MatchesTheHeader()
    {
        int version = 0;
        Assert.Equal(Ok, AbiVersion(&version));
        Assert.Equal(FlexKv.Native.Exports.CommonExports.AbiVersion, version); // the header test pins the constant to flexkv.h
    }
}
