using FlexKv.Core.Engine;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineCapacityTests
{
    [Fact]
    public void Save_MoreBlocksThanTheTierHolds_EvictsAndStaysWithinCapacity()
    {
        using var h = new EngineHarness(cpuBlocks: 8);
        for (int r = 0; r < 5; r++)
        {
            h.Save($"R{r}", Tokens(17, seed: r), Blocks(0, 5));
            Assert.True(h.Engine.Stats().CpuBlocksUsed <= 8);
        }

        EngineStats s = h.Engine.Stats();
        Assert.Equal(8, s.CpuBlocksUsed);
        Assert.Equal(12, s.Evictions);
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("last", Tokens(17, seed: 4), 17, 0));
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("first", Tokens(17, seed: 0), 17, 0));
    }

    [Fact]
    public void Save_TierFullOfPinnedBlocks_StoresWhatFitsAndTheLoadStillWorks()
    {
        using var h = new EngineHarness(cpuBlocks: 8);
        long[] tokens = Tokens(17);
        h.FillDevice(Blocks(0, 5), 100);
        h.Save("A", tokens, Blocks(0, 5));
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("B", tokens, 17, 0)); // pins A's 4 blocks

        // 8 new blocks, room for 4: the pinned ones must survive.
        h.Save("C", Tokens(33, seed: 2), Blocks(20, 9));

        Assert.Equal(4, h.Engine.Stats().BlocksDropped);
        h.Load("B", Blocks(10, 5), 16);
        for (int i = 0; i < 4; i++) Assert.Equal(h.Device.Pattern(100 + i), h.Device.Read(10 + i));
        Assert.Equal(16, h.Engine.GetNumNewMatchedTokens("D", Tokens(33, seed: 2), 33, 0));
    }

    [Fact]
    public void LaunchTasks_MoreSlicesThanTheQueueHolds_AllComplete()
    {
        // 40 saves of 4 blocks over 2 threads are 80 slices for a queue of 16: the rest waits in
        // the backlog and must still be pumped through.
        using var h = new EngineHarness(cpuBlocks: 256, extraConfig: ",\"transfer_queue_capacity\":16");
        for (int r = 0; r < 40; r++)
            Assert.True(h.Engine.RequestFinished($"R{r}", Tokens(17, seed: r), 17, Blocks(0, 5), save: true));

        Assert.Equal(40, h.Engine.LaunchTasks());
        for (int r = 0; r < 40; r++) h.WaitFor(FinishedKind.Sending, $"R{r}");

        Assert.Equal(160, h.Engine.Stats().BlocksSaved);
        for (int r = 0; r < 40; r++) Assert.Equal(16, h.Engine.GetNumNewMatchedTokens($"M{r}", Tokens(17, seed: r), 17, 0));
    }
}
