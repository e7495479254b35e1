using System.Text;
using System.Text.Json;
using FlexKv.Native.Exports;
using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

/// <summary>The planner, build-info and inspection exports called as C calls them.</summary>
public unsafe class PlanExportTests
{
    private static readonly delegate* unmanaged<int, long, long, ulong*, int> PlanCreate = &PlanExports.Create;
    private static readonly delegate* unmanaged<ulong, int> PlanDestroy = &PlanExports.Destroy;
    private static readonly delegate* unmanaged<ulong, long*, nuint, long*, long*, nuint, int*, int*, int*, int> PlanReplay = &PlanExports.Replay;
    private static readonly delegate* unmanaged<ulong, byte*, nuint, nuint*, int> PlanStats = &PlanExports.Stats;
    private static readonly delegate* unmanaged<byte*, nuint, nuint*, int> BuildInfo = &BuildExports.BuildInfo;
    private static readonly delegate* unmanaged<byte*, nuint, byte*, nuint, ulong*, int> SsdOpen = &InspectExports.Open;

    private static JsonElement Json(delegate* unmanaged<byte*, nuint, nuint*, int> call)
    {
        nuint needed;
        Assert.Equal(BufferTooSmall, call(null, 0, &needed));
        var buf = new byte[(int)needed];
        fixed (byte* b = buf) Assert.Equal(Ok, call(b, needed, &needed));
        return JsonDocument.Parse(buf.AsMemory(0, buf.Length - 1)).RootElement.Clone();
    }

    [Fact]
    public void Planner_ReplaysAndReportsThroughTheExports()
    {
        ulong p;
        Assert.Equal(Ok, PlanCreate(4, 100, 0, &p));
        try
        {
            long[] tokens = [.. Enumerable.Range(0, 9), .. Enumerable.Range(0, 9)];
            long[] prompt = [9, 9], total = [9, 9];
            var cpu = new int[2];
            fixed (long* t = tokens) fixed (long* pl = prompt) fixed (long* tl = total) fixed (int* c = cpu)
            {
                Assert.Equal(Ok, PlanReplay(p, t, 18, pl, tl, 2, c, null, null));
                Assert.Equal(InvalidArgument, PlanReplay(p, t, 10, pl, tl, 2, null, null, null)); // 18 announced: nothing replayed
            }
            Assert.Equal([0, 2], cpu);
            nuint needed;
            Assert.Equal(BufferTooSmall, PlanStats(p, null, 0, &needed));
            Assert.True(needed > 2);
            var buf = new byte[4096];
            fixed (byte* b = buf) Assert.Equal(Ok, PlanStats(p, b, 4096, &needed));
            JsonElement s = JsonDocument.Parse(buf.AsMemory(0, (int)needed - 1)).RootElement;
            Assert.Equal(2, s.GetProperty("requests").GetInt64());
            Assert.Equal(2, s.GetProperty("cpu_hit_blocks").GetInt64());
            Assert.Equal(2, s.GetProperty("saved_blocks").GetInt64());
        }
        finally
        {
            Assert.Equal(Ok, PlanDestroy(p));
        }
        Assert.Equal(InvalidHandle, PlanDestroy(p));
        ulong bad = 7;
        Assert.Equal(InvalidArgument, PlanCreate(4, 0, 0, &bad));
        Assert.Equal(0ul, bad);
    }

    [Fact]
    public void BuildInfo_SaysWhatItKnows()
    {
        JsonElement b = Json(BuildInfo);
        Assert.Equal(CommonExports.AbiVersion, b.GetProperty("abi_version").GetInt32());
        Assert.False(string.IsNullOrEmpty(b.GetProperty("git_sha").GetString())); // a sha, or "unknown"
        Assert.StartsWith(".NET", b.GetProperty("dotnet_runtime").GetString());
        Assert.True(b.GetProperty("cpu_features").GetProperty("vector256").ValueKind is JsonValueKind.True or JsonValueKind.False);
    }

    [Fact]
    public void SsdOpen_BadArguments_AreErrors()
    {
        ulong i = 9;
        byte[] dirs = Encoding.UTF8.GetBytes("/tmp\0x");
        fixed (byte* d = dirs) Assert.Equal(InvalidArgument, SsdOpen(d, (nuint)dirs.Length, null, 0, &i));
        Assert.Equal(0ul, i);
        byte[] cfg = "{\"no_such_key\":1}"u8.ToArray();
        byte[] tmp = "/tmp"u8.ToArray();
        fixed (byte* d = tmp) fixed (byte* c = cfg) Assert.Equal(InvalidConfig, SsdOpen(d, 4, c, (nuint)cfg.Length, &i));
    }
}
