using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class BlockIndexCapacityTests
{
    [Fact]
    public void InsertWriting_ManyMoreBlocksThanSlots_NeverUsesMoreThanCapacity()
    {
        var ix = new BlockIndex(new SlotPool(5));
        for (int i = 1; i <= 40; i++)
        {
            ix.AddReady((UInt128)i);
            Assert.True(ix.UsedSlots <= 5);
            Assert.True(ix.Count <= 5);
        }

        Assert.Equal(5, ix.UsedSlots);
        Assert.Equal(35, ix.Evictions);
        var slots = Enumerable.Range(36, 5).Select(k => ix.SlotOf(ix.Lookup((UInt128)k))).ToArray();
        Assert.Equal([0, 1, 2, 3, 4], slots.Order());
    }

    [Fact]
    public void InsertWriting_AllSlotsPinned_ReturnsMinusOneAndKeepsEverything()
    {
        var ix = new BlockIndex(new SlotPool(3));
        int[] writing = [ix.InsertWriting(1, -1, ix.Tick()), ix.InsertWriting(2, -1, ix.Tick()), ix.InsertWriting(3, -1, ix.Tick())];

        Assert.Equal(-1, ix.InsertWriting(4, -1, ix.Tick()));
        Assert.Equal(3, ix.UsedSlots);
        Assert.False(ix.Has(4));
        Assert.All(writing, id => Assert.Equal(BlockState.Writing, ix.StateOf(id)));
    }

    [Fact]
    public void RandomWorkload_InvariantsHoldAfterEveryStep()
    {
        // Chains branch off random existing blocks; some writes fail; some blocks get pinned.
        // After every step: capacity respected, every present block's parent present, pins intact.
        const int capacity = 12;
        var ix = new BlockIndex(new SlotPool(capacity));
        var rng = new Random(7);
        var parentOf = new Dictionary<UInt128, UInt128?>();
        var pinned = new List<(UInt128 Key, int Id)>();
        UInt128 next = 1;

        for (int step = 0; step < 2000; step++)
        {
            var present = parentOf.Keys.Where(k => ix.StateOf(ix.Lookup(k)) == BlockState.Ready).ToList();
            int op = rng.Next(10);
            if (op < 5)
            {
                UInt128? parentKey = present.Count > 0 && rng.Next(3) > 0 ? present[rng.Next(present.Count)] : null;
                int parent = parentKey is { } pk ? ix.Lookup(pk) : -1;
                var chain = new List<int>();
                for (int n = rng.Next(1, 4); n > 0; n--)
                {
                    UInt128 key = next++;
                    int id = ix.InsertWriting(key, parent, ix.Tick());
                    if (id < 0) break;
                    parentOf[key] = parent < 0 ? null : ix.Node(parent).Key;
                    chain.Add(id);
                    parent = id;
                }
                foreach (int id in chain) ix.CompleteWrite(id, ok: rng.Next(6) > 0);
            }
            else if (op < 7 && present.Count > 0)
            {
                UInt128 key = present[rng.Next(present.Count)];
                int id = ix.Lookup(key);
                ix.Pin(id);
                pinned.Add((key, id));
            }
            else if (op < 9 && pinned.Count > 0)
            {
                int i = rng.Next(pinned.Count);
                ix.Unpin(pinned[i].Id);
                pinned.RemoveAt(i);
            }
            else
            {
                // Redo a failed write (what a later put of the same tokens does).
                UInt128[] empty = parentOf.Keys.Where(k => ix.StateOf(ix.Lookup(k)) == BlockState.Empty).ToArray();
                if (empty.Length > 0)
                {
                    UInt128 key = empty[rng.Next(empty.Length)];
                    int id = ix.Lookup(key);
                    if (ix.TryRewrite(id, ix.Tick()))
                    {
                        Assert.Equal(id, ix.Lookup(key));
                        ix.CompleteWrite(id, ok: true);
                    }
                }
            }

            Assert.True(ix.UsedSlots <= capacity);
            foreach (var (key, id) in pinned) Assert.Equal(id, ix.Lookup(key));
            Assert.Equal(pinned.Count, ix.TotalPins);
            int withSlot = 0;
            foreach (var (key, parentKey) in parentOf)
            {
                int id = ix.Lookup(key);
                if (id < 0)
                {
                    parentOf.Remove(key); // keys are never reused, so it cannot come back
                    continue;
                }
                Assert.Equal(key, ix.Node(id).Key);
                if (ix.SlotOf(id) >= 0) withSlot++;
                if (parentKey is { } pk)
                {
                    Assert.True(ix.Has(pk), $"step {step}: block {key} present without its parent {pk}");
                    Assert.Equal(ix.Lookup(pk), ix.Node(id).Parent);
                }
            }
            Assert.Equal(ix.UsedSlots, withSlot);
            Assert.Equal(parentOf.Count, ix.Count);
        }

        foreach (var (_, id) in pinned) ix.Unpin(id);
        Assert.Equal(0, ix.TotalPins);
        Assert.True(ix.Evictions > 0);
    }
}
