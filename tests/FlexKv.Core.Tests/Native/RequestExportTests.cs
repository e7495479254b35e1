using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

public unsafe class RequestExportTests
{
    [Fact]
    public void SaveAndLoad_ThroughTheExports_CopiesTheBytes()
    {
        using var e = new NativeEngine();
        long[] tokens = Engine.EngineHarness.Tokens(17);
        for (int b = 0; b < 5; b++) e.Device.Fill(b, 70 + b);
        e.Save("A", tokens);
        Assert.Equal([(2, "A")], e.Query().Entries);

        Assert.Equal(12, Match(e.Handle, "B", tokens, numComputed: 4));
        Assert.Equal(Ok, Alloc(e.Handle, "B", [20, 21, 22, 23, 24], 12));
        Assert.Equal(1, Launch(e.Handle));
        WaitReady(e.Handle);

        Assert.Equal([(1, "B")], e.Query().Entries);
        Assert.True(e.Device.IsZero(20));
        for (int i = 1; i < 4; i++) Assert.Equal(e.Device.Pattern(70 + i), e.Device.Read(20 + i));
    }

    [Fact]
    public void RequestId_NullEmptyOrInvalidUtf8_ReturnInvalidArgument()
    {
        using var e = new NativeEngine();
        long token = 1;
        int matched;
        byte[] bad = [0x41, 0xff, 0x42];

        Assert.Equal(InvalidArgument, GetNumNewMatchedTokens(e.Handle, null, 1, &token, 1, 0, null, 0, &matched));
        byte a = (byte)'a';
        Assert.Equal(InvalidArgument, GetNumNewMatchedTokens(e.Handle, &a, 0, &token, 1, 0, null, 0, &matched));
        Assert.Contains("empty", LastErrorText());
        fixed (byte* p = bad)
            Assert.Equal(InvalidArgument, GetNumNewMatchedTokens(e.Handle, p, (nuint)bad.Length, &token, 1, 0, null, 0, &matched));
        Assert.Contains("UTF-8", LastErrorText());
        Assert.Equal(InvalidArgument, GetNumNewMatchedTokens(e.Handle, &a, 1, &token, 1, 0, null, 0, null));
    }

    [Fact]
    public void Tokens_NullWithNonZeroLengthForNewRequest_ReturnsInvalidArgument()
    {
        using var e = new NativeEngine();
        byte a = (byte)'a';
        int matched;

        Assert.Equal(InvalidArgument, GetNumNewMatchedTokens(e.Handle, &a, 1, null, 8, 0, null, 0, &matched));
    }

    [Fact]
    public void RequestStateErrors_MapToTheirStatusCodes()
    {
        using var e = new NativeEngine();
        long[] tokens = Engine.EngineHarness.Tokens(9);

        Assert.Equal(UnknownRequest, Alloc(e.Handle, "nobody", [0, 1], 4));
        Assert.Contains("nobody", LastErrorText());
        Assert.Equal(Ok, Finish(e.Handle, "A", tokens, [0, 1, 2], save: false, out int hold));
        Assert.Equal(0, hold);
        Assert.Equal(InvalidState, Finish(e.Handle, "A", tokens, [0, 1, 2], save: false, out _));
        Assert.Contains("already finished", LastErrorText());
        byte x = (byte)'x';
        Assert.Equal(UnknownRequest, CancelRequest(e.Handle, &x, 1));
    }

    [Fact]
    public void LaunchTasks_NothingPlanned_LaunchesZero()
    {
        using var e = new NativeEngine();

        Assert.Equal(0, Launch(e.Handle));
        int n;
        Assert.Equal(InvalidArgument, LaunchTasks(e.Handle, null));
        Assert.Equal(Ok, LaunchTasks(e.Handle, &n));
    }

    [Fact]
    public void RegisterKvCaches_NullLayers_ReturnsInvalidArgument()
    {
        using var e = new NativeEngine();

        Assert.Equal(InvalidArgument, RegisterKvCaches(e.Handle, null, 2, 8));
        Assert.Equal(InvalidArgument, RegisterKvCaches(e.Handle, null, 0, 8)); // no layers is no registration
    }
}
