using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

internal static class IndexTestExtensions
{
    /// <summary>Inserts a block and completes its write: a Ready, unpinned block used at a fresh tick.</summary>
    public static int AddReady(this BlockIndex index, UInt128 key, int parent = -1)
    {
        int id = index.InsertWriting(key, parent, index.Tick());
        Assert.True(id >= 0, $"no slot for key {key}");
        index.CompleteWrite(id, ok: true);
        return id;
    }

    /// <summary>Inserts a chain of blocks under the root; returns their node ids.</summary>
    public static int[] AddChain(this BlockIndex index, params UInt128[] keys)
    {
        var ids = new int[keys.Length];
        int parent = -1;
        for (int i = 0; i < keys.Length; i++) parent = ids[i] = index.AddReady(keys[i], parent);
        return ids;
    }

    public static bool Has(this BlockIndex index, UInt128 key) => index.Lookup(key) >= 0;

    public static int Match(this BlockIndex index, params UInt128[] keys) =>
        index.MatchReady(keys, new int[keys.Length], index.Tick());
}
