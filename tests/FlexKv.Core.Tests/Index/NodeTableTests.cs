using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

/// <summary>The key table agrees with a dictionary through random adds and removes (long probe runs, wrap-around, growth).</summary>
public class NodeTableTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(2, 5000)]
    [InlineData(3, 60_000)]
    public void RandomAddsAndRemoves_AgreeWithADictionary(int seed, int maxKeys)
    {
        var rng = new Random(seed);
        var nodes = new BlockNode[maxKeys];
        var table = new NodeTable(4);
        var model = new Dictionary<UInt128, int>();
        var free = new Stack<int>(Enumerable.Range(0, maxKeys).Reverse());
        var live = new List<int>();
        for (int step = 0; step < 4 * maxKeys + 2000; step++)
        {
            bool add = free.Count > 0 && (live.Count == 0 || rng.Next(3) != 0);
            if (add)
            {
                int id = free.Pop();
                // Few distinct high halves: many keys share the bits the position mixes in.
                nodes[id].Key = new UInt128((ulong)rng.Next(4), (ulong)rng.NextInt64());
                if (model.ContainsKey(nodes[id].Key)) { free.Push(id); continue; }
                Assert.Equal(-1, table.Find(nodes[id].Key, nodes));
                table.Add(nodes[id].Key, id);
                model.Add(nodes[id].Key, id);
                live.Add(id);
            }
            else
            {
                int k = rng.Next(live.Count);
                int id = live[k];
                live[k] = live[^1];
                live.RemoveAt(live.Count - 1);
                table.Remove(nodes[id].Key, id);
                model.Remove(nodes[id].Key);
                free.Push(id);
            }
            if (step % 97 == 0 && live.Count > 0)
                for (int c = 0; c < 20; c++)
                {
                    int id = live[rng.Next(live.Count)];
                    Assert.Equal(id, table.Find(nodes[id].Key, nodes));
                }
        }
        Assert.Equal(model.Count, table.Count);
        foreach (var (key, id) in model) Assert.Equal(id, table.Find(key, nodes));
        Assert.Equal(-1, table.Find(new UInt128(99, 99), nodes));
    }

    [Fact]
    public void ABlockNode_Is56Bytes() => Assert.Equal(56, System.Runtime.CompilerServices.Unsafe.SizeOf<BlockNode>());
}
