using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class BlockIndexPinTests
{
    [Fact]
    public void TotalPins_PinsAndWritesReleased_ReturnsToZero()
    {
        var ix = new BlockIndex(new SlotPool(4));
        int a = ix.InsertWriting(1, -1, ix.Tick());
        int b = ix.InsertWriting(2, a, ix.Tick());
        Assert.Equal(2, ix.TotalPins); // each write holds a pin

        ix.Pin(a);
        ix.Pin(a);
        Assert.Equal(4, ix.TotalPins);

        ix.CompleteWrite(a, ok: true);
        ix.CompleteWrite(b, ok: false);
        ix.Unpin(a);
        ix.Unpin(a);

        Assert.Equal(0, ix.TotalPins);
    }

    [Fact]
    public void Unpin_MoreOftenThanPinned_Throws()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.AddReady(1);

        Assert.Throws<InvalidOperationException>(() => ix.Unpin(a));
        Assert.Equal(0, ix.TotalPins);
    }

    [Fact]
    public void CompleteWrite_BlockNotWriting_Throws()
    {
        var ix = new BlockIndex(new SlotPool(2));
        int a = ix.AddReady(1);

        Assert.Throws<InvalidOperationException>(() => ix.CompleteWrite(a, ok: true));
    }

    [Fact]
    public void Clear_WithBlocks_DropsEverythingAndFreesAllSlots()
    {
        var ix = new BlockIndex(new SlotPool(3));
        ix.AddChain(1, 2, 3);
        ix.Pin(ix.Lookup(1));

        ix.Clear();

        Assert.Equal(0, ix.Count);
        Assert.Equal(0, ix.UsedSlots);
        Assert.Equal(0, ix.TotalPins);
        Assert.Equal(0, ix.Match(1));
        ix.AddChain(4, 5, 6); // all slots usable again without eviction
        Assert.Equal(0, ix.Evictions);
    }
}
