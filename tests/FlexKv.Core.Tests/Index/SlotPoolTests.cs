using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class SlotPoolTests
{
    [Fact]
    public void TryAllocate_AllSlots_GivesEachIdOnceThenFails()
    {
        var pool = new SlotPool(4);
        var got = new List<int>();
        while (pool.TryAllocate(out int s)) got.Add(s);

        Assert.Equal([0, 1, 2, 3], got.Order());
        Assert.Equal(0, pool.FreeCount);
        Assert.False(pool.TryAllocate(out int none));
        Assert.Equal(-1, none);
    }

    [Fact]
    public void Free_ThenAllocate_ReusesTheFreedSlotFirst()
    {
        var pool = new SlotPool(4);
        pool.TryAllocate(out _);
        pool.TryAllocate(out int second);

        pool.Free(second);

        Assert.True(pool.TryAllocate(out int again));
        Assert.Equal(second, again);
    }

    [Fact]
    public void Free_MoreThanCapacityOrOutOfRange_Throws()
    {
        var pool = new SlotPool(2);
        Assert.Throws<InvalidOperationException>(() => pool.Free(0));
        pool.TryAllocate(out _);
        Assert.Throws<InvalidOperationException>(() => pool.Free(2));
        Assert.Throws<InvalidOperationException>(() => pool.Free(-1));
    }

    [Fact]
    public void Reset_AfterAllocations_FreesEverySlot()
    {
        var pool = new SlotPool(3);
        pool.TryAllocate(out _);
        pool.TryAllocate(out _);

        pool.Reset();

        Assert.Equal(3, pool.FreeCount);
    }

    [Fact]
    public void Constructor_ZeroCapacity_Throws()
    {
        Assert.ThrowsAny<ArgumentException>(() => new SlotPool(0));
    }
}
