using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class LruEvictionPolicyTests
{
    [Fact]
    public void Candidates_ComeOutOldestFirst_AndByArrivalWithinATick()
    {
        var lru = new LruEvictionPolicy();
        lru.OnCandidate(1, 0, 5);
        lru.OnCandidate(2, 0, 5);
        lru.OnCandidate(3, 0, 2); // older than what is queued: out of arrival order
        lru.OnCandidate(4, 0, 7);

        Assert.Equal([3, 1, 2, 4], TakeAll(lru).Select(c => c.Node));
        Assert.Equal(0, lru.Count);
    }

    [Fact]
    public void AReturnedCandidate_KeepsItsPlaceBeforeItsPeers()
    {
        var lru = new LruEvictionPolicy();
        lru.OnCandidate(1, 9, 3);
        lru.OnCandidate(2, 0, 3);
        Assert.True(lru.TryTake(out int node, out uint gen, out long use));
        Assert.Equal((1, 9u, 3L), (node, gen, use));

        lru.Return(node, gen, use);

        Assert.Equal([(1, 9u, 3L), (2, 0u, 3L)], TakeAll(lru));
    }

    // The ring and the heap together must give exactly the order of one heap over every entry
    // (the eviction order, and so the matched tokens, of a full index depend on it).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomOffersTakesAndReturns_MatchOneHeapOverEveryEntry(int seed)
    {
        var rng = new Random(seed);
        var lru = new LruEvictionPolicy();
        var reference = new PriorityQueue<(int Node, uint Gen, long Use), (long Use, long Arrival)>();
        long arrival = 0, tick = 0, lastTakenArrival = 0;
        for (int op = 0; op < 50_000; op++)
        {
            int r = rng.Next(100);
            if (r < 55)
            {
                if (rng.Next(4) == 0) tick++;
                // Mostly the current tick, sometimes an older one (a parent, an unpinned block).
                long use = rng.Next(5) == 0 ? Math.Max(0, tick - rng.Next(50)) : tick;
                int node = rng.Next(1 << 20);
                uint gen = (uint)rng.Next(8);
                lru.OnCandidate(node, gen, use);
                reference.Enqueue((node, gen, use), (use, arrival++));
            }
            else if (r < 95)
            {
                bool got = lru.TryTake(out int node, out uint gen, out long use);
                Assert.Equal(reference.Count > 0, got);
                if (!got) continue;
                reference.TryDequeue(out var want, out var prio);
                Assert.Equal(want, (node, gen, use));
                lastTakenArrival = prio.Arrival;
                if (rng.Next(10) == 0)
                {
                    lru.Return(node, gen, use);
                    reference.Enqueue((node, gen, use), (use, lastTakenArrival));
                }
            }
            else if (r == 99 && rng.Next(20) == 0)
            {
                lru.Clear();
                reference.Clear();
            }
            Assert.Equal(reference.Count, lru.Count);
        }
        while (reference.TryDequeue(out var want, out _))
        {
            Assert.True(lru.TryTake(out int node, out uint gen, out long use));
            Assert.Equal(want, (node, gen, use));
        }
        Assert.False(lru.TryTake(out _, out _, out _));
    }

    private static List<(int Node, uint Gen, long Use)> TakeAll(LruEvictionPolicy lru)
    {
        var all = new List<(int, uint, long)>();
        while (lru.TryTake(out int node, out uint gen, out long use)) all.Add((node, gen, use));
        return all;
    }
}
