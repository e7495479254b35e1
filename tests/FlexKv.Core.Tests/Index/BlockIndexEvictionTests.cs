using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class BlockIndexEvictionTests
{
    [Fact]
    public void InsertWriting_Full_EvictsLeastRecentlyUsedLeaf()
    {
        var ix = new BlockIndex(new SlotPool(3));
        ix.AddReady(1);
        ix.AddReady(2);
        ix.AddReady(3);
        ix.Match(1); // 1 becomes the most recently used

        ix.AddReady(4);
        Assert.False(ix.Has(2));
        ix.AddReady(5);
        Assert.False(ix.Has(3));
        ix.AddReady(6);
        Assert.False(ix.Has(1));
        Assert.True(ix.Has(4) && ix.Has(5) && ix.Has(6));
        Assert.Equal(3, ix.Evictions);
    }

    [Fact]
    public void InsertWriting_OldestIsPinned_EvictsTheNextOldest()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.AddReady(1);
        ix.AddReady(2);
        ix.Pin(a);

        ix.AddReady(3);

        Assert.True(ix.Has(1));
        Assert.False(ix.Has(2));

        ix.Unpin(a);
        ix.AddReady(4);
        Assert.False(ix.Has(1)); // unpinned, it is the LRU leaf again
    }

    [Fact]
    public void InsertWriting_OldestIsNotALeaf_EvictsALeafInstead()
    {
        var ix = new BlockIndex(new SlotPool(3));
        int a = ix.AddReady(1);   // oldest, but gets a child
        ix.AddReady(2);
        ix.AddReady(3, a);

        ix.AddReady(4);

        Assert.True(ix.Has(1));
        Assert.True(ix.Has(3));
        Assert.False(ix.Has(2));
    }

    [Fact]
    public void TryEvictOne_LastChildEvicted_ParentBecomesEvictable()
    {
        var ix = new BlockIndex(new SlotPool(4));
        ix.AddChain(1, 2, 3);

        Assert.True(ix.TryEvictOne(-1));
        Assert.False(ix.Has(3));
        Assert.True(ix.TryEvictOne(-1));
        Assert.False(ix.Has(2));
        Assert.True(ix.TryEvictOne(-1));
        Assert.Equal(0, ix.Count);
        Assert.False(ix.TryEvictOne(-1));
    }

    [Fact]
    public void InsertWriting_ParentIsTheOnlyLruLeaf_ProtectsTheParent()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.AddReady(1); // LRU leaf
        ix.AddReady(2);

        int child = ix.InsertWriting(3, a, ix.Tick());

        Assert.True(child >= 0);
        Assert.True(ix.Has(1));
        Assert.False(ix.Has(2));
        Assert.Equal(a, ix.Node(child).Parent);
    }

    [Fact]
    public void InsertWriting_OnlyEvictableBlockIsTheParent_ReturnsMinusOne()
    {
        var ix = new BlockIndex(new SlotPool(1));
        int a = ix.AddReady(1);

        Assert.Equal(-1, ix.InsertWriting(2, a, ix.Tick()));
        Assert.True(ix.Has(1));

        // The kept parent must still be a candidate afterwards.
        ix.AddReady(3);
        Assert.False(ix.Has(1));
    }

    [Fact]
    public void InsertWriting_RepeatedTouches_StillEvictsByLastUse()
    {
        // Re-touching leaves leaves stale heap entries behind; they must not decide the order.
        var ix = new BlockIndex(new SlotPool(3));
        ix.AddReady(1);
        ix.AddReady(2);
        ix.AddReady(3);
        for (int i = 0; i < 50; i++) { ix.Match(1); ix.Match(2); }

        ix.AddReady(4);

        Assert.False(ix.Has(3));
        Assert.True(ix.Has(1) && ix.Has(2));
    }
}
