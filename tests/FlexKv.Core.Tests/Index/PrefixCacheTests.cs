using FlexKv.Core.Errors;
using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class PrefixCacheTests
{
    private static long[] Seq(int n, long start = 0) => Enumerable.Range(0, n).Select(i => start + i).ToArray();

    [Fact]
    public void Insert_ThenMatch_ReturnsFullBlocksOnly()
    {
        var cache = new PrefixCache(4, 64);

        Assert.Equal(2, cache.Insert(1, Seq(10)));
        Assert.Equal(8, cache.Match(2, Seq(10)));
        Assert.Equal(8, cache.Match(3, Seq(9)));
        Assert.Equal(4, cache.Match(4, Seq(7)));
        Assert.Equal(0, cache.Match(5, Seq(3)));
    }

    [Fact]
    public void Insert_AlreadyCachedPrefix_StoresOnlyTheNewBlocks()
    {
        var cache = new PrefixCache(4, 64);
        cache.Insert(1, Seq(8));

        Assert.Equal(1, cache.Insert(2, Seq(12)));
        Assert.Equal(0, cache.Insert(3, Seq(12)));
        Assert.Equal(3, cache.Index.Count);
    }

    [Fact]
    public void Match_SequenceShrinks_ThrowsInvalidArgument()
    {
        var cache = new PrefixCache(4, 64);
        cache.Match(1, Seq(12));

        var ex = Assert.Throws<FlexKvException>(() => cache.Match(1, Seq(8)));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public void Match_SequenceGrows_SeesTheNewBlocks()
    {
        var cache = new PrefixCache(4, 64);
        cache.Insert(1, Seq(16));

        Assert.Equal(4, cache.Match(2, Seq(5)));
        Assert.Equal(12, cache.Match(2, Seq(13)));
    }

    [Fact]
    public void Forget_KnownAndUnknownSequence_ReportsWhetherItExisted()
    {
        var cache = new PrefixCache(4, 64);
        cache.Match(1, Seq(8));

        Assert.True(cache.Forget(1));
        Assert.False(cache.Forget(1));
        cache.Match(1, Seq(4)); // a forgotten id may start over shorter
    }

    [Theory]
    [InlineData(0, 8)]
    [InlineData(4, 0)]
    public void Constructor_NonPositiveSizes_ThrowInvalidConfig(int tokensPerBlock, int capacity)
    {
        var ex = Assert.Throws<FlexKvException>(() => new PrefixCache(tokensPerBlock, capacity));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
    }
}
