using static FlexKv.Core.Tests.Native.NativeApi;

namespace FlexKv.Core.Tests.Native;

public unsafe class IndexExportTests
{
    [Fact]
    public void InsertThenMatch_ThroughTheExports_ReturnsTheCachedPrefix()
    {
        ulong index;
        Assert.Equal(Ok, IndexCreate(4, 64, &index));
        try
        {
            long[] tokens = Enumerable.Range(0, 10).Select(i => (long)i).ToArray();
            int stored, matched;
            long blocks, evictions;
            fixed (long* t = tokens)
            {
                Assert.Equal(Ok, IndexInsert(index, 1, t, 10, &stored));
                Assert.Equal(Ok, IndexMatch(index, 2, t, 9, &matched));
            }

            Assert.Equal(2, stored);
            Assert.Equal(8, matched);
            Assert.Equal(Ok, IndexInfo(index, &blocks, &evictions));
            Assert.Equal(2, blocks);
            Assert.Equal(0, evictions);
        }
        finally
        {
            Assert.Equal(Ok, IndexDestroy(index));
        }
        Assert.Equal(InvalidHandle, IndexDestroy(index));
        Assert.Equal(Ok, IndexDestroy(0));
    }

    [Fact]
    public void IndexCreate_BadArguments_ReturnTheirCodes()
    {
        ulong index = 5;
        Assert.Equal(InvalidArgument, IndexCreate(4, 0, &index));
        Assert.Equal(0ul, index);
        Assert.Equal(InvalidArgument, IndexCreate(4, (long)int.MaxValue + 1, &index));
        Assert.Equal(InvalidConfig, IndexCreate(0, 16, &index));
        Assert.Contains("tokens_per_block", LastErrorText());
        Assert.Equal(InvalidArgument, IndexCreate(4, 16, null));
    }

    [Fact]
    public void IndexCalls_NullOutputsOrEngineHandle_ReturnErrors()
    {
        ulong index;
        Assert.Equal(Ok, IndexCreate(4, 16, &index));
        Assert.Equal(Ok, Create(EngineConfig(256), out ulong engine));
        try
        {
            long t = 1;
            int matched;
            long blocks;
            Assert.Equal(InvalidArgument, IndexMatch(index, 1, &t, 1, null));
            Assert.Equal(InvalidArgument, IndexMatch(index, 1, null, 4, &matched));
            Assert.Equal(InvalidArgument, IndexInfo(index, &blocks, null));
            Assert.Equal(InvalidHandle, IndexMatch(engine, 1, &t, 1, &matched));
        }
        finally
        {
            IndexDestroy(index);
            EngineDestroy(engine);
        }
    }
}
