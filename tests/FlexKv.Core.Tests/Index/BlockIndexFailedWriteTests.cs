using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class BlockIndexFailedWriteTests
{
    [Fact]
    public void CompleteWrite_FailedLeaf_DropsTheBlockAndFreesItsSlot()
    {
        var ix = new BlockIndex(new SlotPool(4));
        int a = ix.AddReady(1);
        int b = ix.InsertWriting(2, a, ix.Tick());
        Assert.Equal(2, ix.UsedSlots);

        ix.CompleteWrite(b, ok: false);

        Assert.False(ix.Has(2));
        Assert.Equal(1, ix.UsedSlots);
        Assert.Equal(1, ix.Count);
        Assert.Equal(0, ix.TotalPins);
        // The parent is a leaf again and can be evicted.
        Assert.True(ix.TryEvictOne(-1));
        Assert.Equal(0, ix.Count);
    }

    [Fact]
    public void CompleteWrite_FailedBlockWithChild_StaysEmptyUntilTheChildGoes()
    {
        var ix = new BlockIndex(new SlotPool(4));
        int a = ix.InsertWriting(1, -1, ix.Tick());
        int b = ix.InsertWriting(2, a, ix.Tick());

        ix.CompleteWrite(a, ok: false);
        ix.CompleteWrite(b, ok: true);

        Assert.Equal(a, ix.Lookup(1));
        Assert.Equal(BlockState.Empty, ix.StateOf(a));
        Assert.Equal(-1, ix.SlotOf(a));
        Assert.Equal(1, ix.UsedSlots);
        Assert.Equal(0, ix.Match(1, 2)); // the child is unreachable behind the hole

        Assert.True(ix.TryEvictOne(-1)); // evicts the child; the empty parent goes with it
        Assert.Equal(0, ix.Count);
        Assert.Equal(0, ix.UsedSlots);
        Assert.False(ix.TryEvictOne(-1));
    }

    [Fact]
    public void TryRewrite_EmptyBlock_BecomesWritingAndThenMatchable()
    {
        var ix = new BlockIndex(new SlotPool(4));
        int a = ix.InsertWriting(1, -1, ix.Tick());
        int b = ix.InsertWriting(2, a, ix.Tick());
        ix.CompleteWrite(a, ok: false);
        ix.CompleteWrite(b, ok: true);

        Assert.True(ix.TryRewrite(a, ix.Tick()));
        Assert.Equal(BlockState.Writing, ix.StateOf(a));
        Assert.Equal(1, ix.TotalPins);
        ix.CompleteWrite(a, ok: true);

        Assert.Equal(2, ix.Match(1, 2));
        Assert.Equal(0, ix.TotalPins);
        Assert.Equal(2, ix.UsedSlots);
    }

    [Fact]
    public void TryRewrite_EvictionTakesTheEmptyBlocksLastChild_KeepsTheRewrittenBlock()
    {
        // Full cache; the only evictable block is the empty block's child. Evicting it must
        // not also drop the block being rewritten (it would be written but no longer indexed).
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.InsertWriting(1, -1, ix.Tick());
        int b = ix.InsertWriting(2, a, ix.Tick());
        ix.CompleteWrite(a, ok: false);
        ix.CompleteWrite(b, ok: true);
        ix.AddReady(3);
        Assert.Equal(2, ix.UsedSlots);

        Assert.True(ix.TryRewrite(a, ix.Tick()));

        Assert.False(ix.Has(2));
        Assert.Equal(a, ix.Lookup(1));
        Assert.Equal(BlockState.Writing, ix.StateOf(a));
        ix.CompleteWrite(a, ok: true);
        Assert.Equal(1, ix.Match(1));
        Assert.Equal(2, ix.Count);
        Assert.Equal(2, ix.UsedSlots);
        Assert.Equal(0, ix.TotalPins);
    }

    [Fact]
    public void TryRewrite_NothingEvictable_ReturnsFalseAndLeavesTheBlockEmpty()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.InsertWriting(1, -1, ix.Tick());
        int b = ix.InsertWriting(2, a, ix.Tick());
        ix.CompleteWrite(a, ok: false);
        ix.CompleteWrite(b, ok: true);
        ix.Pin(b);
        int c = ix.InsertWriting(3, -1, ix.Tick()); // takes the freed slot and stays pinned

        Assert.False(ix.TryRewrite(a, ix.Tick()));

        Assert.Equal(a, ix.Lookup(1));
        Assert.Equal(BlockState.Empty, ix.StateOf(a));
        Assert.Equal(2, ix.UsedSlots);
        Assert.Equal(2, ix.TotalPins);
        ix.Unpin(b);
        ix.CompleteWrite(c, ok: true);
        Assert.Equal(0, ix.TotalPins);
    }

    [Fact]
    public void TryRewrite_BlockNotEmpty_Throws()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.AddReady(1);

        Assert.Throws<InvalidOperationException>(() => ix.TryRewrite(a, ix.Tick()));
    }
}
