using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class BlockIndexMatchTests
{
    [Fact]
    public void MatchReady_AllPresent_ReturnsAllAndTheirNodes()
    {
        var ix = new BlockIndex(new SlotPool(8));
        int[] ids = ix.AddChain(1, 2, 3);
        var nodes = new int[3];

        Assert.Equal(3, ix.MatchReady([1, 2, 3], nodes, ix.Tick()));
        Assert.Equal(ids, nodes);
    }

    [Fact]
    public void MatchReady_MissingBlock_StopsThereEvenIfLaterBlocksExist()
    {
        var ix = new BlockIndex(new SlotPool(8));
        ix.AddChain(1, 2);
        ix.AddReady(4); // a block with a later key but not chained: must not extend the match

        Assert.Equal(2, ix.Match(1, 2, 3, 4));
        Assert.Equal(0, ix.Match(9, 1, 2));
    }

    [Fact]
    public void MatchReady_WritingBlock_StopsBeforeIt()
    {
        var ix = new BlockIndex(new SlotPool(8));
        int a = ix.AddReady(1);
        int b = ix.InsertWriting(2, a, ix.Tick());

        Assert.Equal(BlockState.Writing, ix.StateOf(b));
        Assert.Equal(1, ix.Match(1, 2));

        ix.CompleteWrite(b, ok: true);
        Assert.Equal(2, ix.Match(1, 2));
    }

    [Fact]
    public void MatchReady_EmptyIndexOrNoKeys_ReturnsZero()
    {
        var ix = new BlockIndex(new SlotPool(2));
        Assert.Equal(0, ix.Match(1));
        ix.AddReady(1);
        Assert.Equal(0, ix.Match());
    }
}
