using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

public unsafe class EngineHandleExportTests
{
    [Fact]
    public void EngineCreate_NullPointers_ReturnInvalidArgumentWithAMessage()
    {
        ulong engine = 123;
        Assert.Equal(InvalidArgument, EngineCreate(null, 10, &engine));
        Assert.Equal(0ul, engine); // the out handle is cleared on failure
        Assert.Contains("config_json", LastErrorText());

        byte json = (byte)'{';
        Assert.Equal(InvalidArgument, EngineCreate(&json, 1, null));
        Assert.Contains("engine", LastErrorText());
    }

    [Fact]
    public void EngineCreate_InvalidConfig_ReturnsInvalidConfigNamingTheKey()
    {
        Assert.Equal(InvalidConfig, Create("""{"num_cpu_blocks":8,"block_bytes":1024,"tp_rank":3}""", out ulong engine));
        Assert.Equal(0ul, engine);
        Assert.Contains("tp_rank", LastErrorText());

        Assert.Equal(InvalidConfig, Create("{not json", out _));
    }

    [Fact]
    public void Calls_GarbageHandle_ReturnInvalidHandle()
    {
        int n;
        nuint needed;
        Assert.Equal(InvalidHandle, LaunchTasks(12345, &n));
        Assert.Contains("unknown", LastErrorText());
        Assert.Equal(InvalidHandle, Stats(0xdead_beef_0000, null, 0, &needed));
        Assert.Equal(InvalidHandle, Reset(1));
        Assert.Equal(InvalidHandle, EngineShutdown(0));
        Assert.Equal(InvalidHandle, EngineDestroy(42));
    }

    [Fact]
    public void Calls_DestroyedHandle_ReturnInvalidHandle()
    {
        Assert.Equal(Ok, Create(EngineConfig(256), out ulong engine));
        Assert.NotEqual(0ul, engine);
        Assert.Equal(Ok, EngineDestroy(engine));

        int n;
        Assert.Equal(InvalidHandle, LaunchTasks(engine, &n));
        Assert.Equal(InvalidHandle, Reset(engine));
        Assert.Equal(InvalidHandle, EngineDestroy(engine));
    }

    [Fact]
    public void Calls_ALiveHandleOffByAFew_NeverReachAnotherEngine()
    {
        // Two engines made one after the other: neither's neighbours (off by one, or by one
        // in the high half) are valid handles, so a stray value cannot drive the other engine.
        Assert.Equal(Ok, Create(EngineConfig(256), out ulong a));
        Assert.Equal(Ok, Create(EngineConfig(256), out ulong b));
        try
        {
            int n;
            foreach (ulong h in new[] { a + 1, a - 1, b + 1, b - 1, a + (1ul << 32), b - (1ul << 32) })
            {
                if (h == a || h == b) continue;
                Assert.Equal(InvalidHandle, LaunchTasks(h, &n));
            }
            Assert.Equal(Ok, LaunchTasks(a, &n));
            Assert.Equal(Ok, LaunchTasks(b, &n));
        }
        finally
        {
            EngineDestroy(a);
            EngineDestroy(b);
        }
    }

    [Fact]
    public void EngineDestroy_Zero_IsANoOp()
    {
        Assert.Equal(Ok, EngineDestroy(0));
    }

    [Fact]
    public void Calls_IndexHandleToEngineExport_ReturnInvalidHandle()
    {
        ulong index;
        Assert.Equal(Ok, IndexCreate(4, 16, &index));
        try
        {
            int n;
            Assert.Equal(InvalidHandle, LaunchTasks(index, &n));
            Assert.Equal(InvalidHandle, EngineDestroy(index)); // and it must not remove the index
            long blocks, evictions;
            Assert.Equal(Ok, IndexInfo(index, &blocks, &evictions));
        }
        finally
        {
            Assert.Equal(Ok, IndexDestroy(index));
        }
    }

    [Fact]
    public void Calls_AfterShutdown_ReturnShutDownUntilDestroyed()
    {
        Assert.Equal(Ok, Create(EngineConfig(256), out ulong engine));
        Assert.Equal(Ok, EngineShutdown(engine));
        Assert.Equal(Ok, EngineShutdown(engine)); // idempotent

        int n;
        Assert.Equal(ShutDown, LaunchTasks(engine, &n));
        Assert.Contains("shut down", LastErrorText());
        Assert.Equal(ShutDown, Reset(engine));
        Assert.Equal(Ok, EngineDestroy(engine));
        Assert.Equal(InvalidHandle, Reset(engine));
    }

    [Fact]
    public void Stats_SmallBuffer_ReturnsBufferTooSmallThenJson()
    {
        Assert.Equal(Ok, Create(EngineConfig(256, cpuBlocks: 16), out ulong engine));
        try
        {
            nuint needed = 0;
            byte small;
            Assert.Equal(BufferTooSmall, Stats(engine, &small, 1, &needed));
            var buf = new byte[(int)needed];
            fixed (byte* p = buf) Assert.Equal(Ok, Stats(engine, p, needed, &needed));

            Assert.Equal(0, buf[^1]);
            using var doc = System.Text.Json.JsonDocument.Parse(buf.AsMemory(0, buf.Length - 1));
            Assert.Equal(16, doc.RootElement.GetProperty("cpu_blocks_total").GetInt64());
        }
        finally
        {
            EngineDestroy(engine);
        }
    }
}
