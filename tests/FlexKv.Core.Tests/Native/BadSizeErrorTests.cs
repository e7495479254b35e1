using System.Text;
using FlexKv.Core.Config;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Tests.Engine;
using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

/// <summary>Sizes at or past the limits get clear errors naming what is wrong, never an internal error.</summary>
public unsafe class BadSizeErrorTests
{
    [Fact]
    public void IndexCreate_TheLargestCapacity_Works()
    {
        ulong index;
        Assert.Equal(Ok, IndexCreate(16, int.MaxValue, &index));
        Assert.Equal(Ok, IndexDestroy(index));
    }

    [Fact]
    public void IndexCreate_TokensPerBlockAboveTheEnginesLimit_IsAConfigError()
    {
        ulong index;
        Assert.Equal(InvalidConfig, IndexCreate(1 << 30, 16, &index));
        Assert.Contains("1..4096", LastErrorText());
    }

    [Fact]
    public void IndexReplay_LengthsThatOverflow_AreRefusedNamingThem()
    {
        ulong index;
        Assert.Equal(Ok, IndexCreate(4, 64, &index));
        try
        {
            long[] tokens = new long[8];
            long[] prompt = [4, 2], total = [4, long.MaxValue - 2];
            int[] matched = new int[2];
            long sum;
            fixed (long* t = tokens, p = prompt, tl = total)
            fixed (int* m = matched)
                Assert.Equal(InvalidArgument, IndexReplay(index, t, 8, p, tl, 2, m, &sum));
            Assert.Contains("sequence 1", LastErrorText());
            Assert.Contains("do not fit", LastErrorText());
        }
        finally
        {
            IndexDestroy(index);
        }
    }

    [Fact]
    public void Engine_WithCpuBlocksNearTheLimit_FailsCleanlyOrWorks()
    {
        // 2^31-1 blocks of 4 KiB (8 TiB) exceed this machine's memory: a clear out-of-memory error.
        var ex = Assert.Throws<FlexKvException>(() => KvEngine.Create(
            Encoding.UTF8.GetBytes("""{"num_cpu_blocks":2147483647,"block_bytes":4096,"use_hugepage_cpu_buffer":false}""")));
        Assert.Equal(FlexKvStatus.OutOfMemory, ex.Status);
        Assert.Contains("cpu_cache_gb", ex.Message);
    }

    [Theory]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":4096,"ssd_cache_gb":1,"ssd_cache_dir":"/tmp/a\u0000b"}""", "ssd_cache_dir")]
    [InlineData("""{"num_cpu_blocks":8,"block_bytes":4096,"remote_url":" , , "}""", "remote_url")]
    public void Config_PathsAndUrlsThatNameNothing_AreConfigErrorsNamingTheKey(string json, string key)
    {
        var ex = Assert.Throws<FlexKvException>(() => EngineOptionsJson.Parse(json));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
        Assert.Contains($"'{key}'", ex.Message);
    }

    [Fact]
    public void RegisterRank_AHugeWorldSize_IsRefusedAtOnce()
    {
        using var h = new EngineHarness(register: false);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = Assert.Throws<FlexKvException>(() =>
            h.Engine.Devices.RegisterRankKvCaches(0, 1 << 30, Environment.ProcessId, h.Device.Layers, h.Device.NumBlocks));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("world_size", ex.Message);
        Assert.True(sw.ElapsedMilliseconds < 1000);
    }
}
