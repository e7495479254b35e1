using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Transfer;

public unsafe class RankedTransportTests
{
    /// <summary>An asynchronous rank that records its calls and fails the blocks it is told to.</summary>
    private sealed class RecordingRank(KvLayout layout, int rank, List<string> log) : IAsyncDeviceTransport
    {
        public HashSet<int> FailAtSubmit { get; } = new();
        public bool FailAtComplete { get; set; }
        public bool ThrowAtSubmit { get; set; }

        public KvLayout Layout => layout;

        public int Copy(TransferDirection d, ReadOnlySpan<int> blocks, ReadOnlySpan<int> slots, byte* host, long stride, Span<byte> failed) =>
            Complete(d, failed, Submit(d, blocks, slots, host, stride, failed));

        public int Submit(TransferDirection d, ReadOnlySpan<int> blocks, ReadOnlySpan<int> slots, byte* host, long stride, Span<byte> failed)
        {
            log.Add($"submit {rank}");
            if (ThrowAtSubmit) throw new InvalidOperationException("no context");
            int n = 0;
            for (int i = 0; i < blocks.Length; i++)
                if (failed[i] == 0 && FailAtSubmit.Contains(blocks[i])) { failed[i] = 1; n++; }
            return n;
        }

        public int Complete(TransferDirection d, Span<byte> failed, int submitFailures)
        {
            log.Add($"complete {rank}");
            if (!FailAtComplete) return submitFailures;
            failed.Fill(1);
            return failed.Length;
        }
    }

    private static (RankedTransport Ranked, RecordingRank[] Ranks, List<string> Log) Make()
    {
        using var shard = new DeviceKvCache(8, spanBytes: 16);
        var log = new List<string>();
        RecordingRank[] ranks = [new(KvLayout.Create(shard.Layers, 8, shard.BlockBytes), 0, log),
                                 new(KvLayout.Create(shard.Layers, 8, shard.BlockBytes), 1, log)];
        return (new RankedTransport(ranks), ranks, log);
    }

    private static int Copy(RankedTransport t, int[] blocks, byte[] failed)
    {
        fixed (byte* f = failed)
            return t.Copy(TransferDirection.DeviceToHost, blocks, blocks, null, 0, new Span<byte>(f, failed.Length));
    }

    [Fact]
    public void Copy_AsynchronousRanks_AreAllSubmittedBeforeAnyIsWaitedFor()
    {
        var (ranked, _, log) = Make();

        Assert.Equal(0, Copy(ranked, [0, 1, 2], new byte[3]));

        Assert.Equal(["submit 0", "submit 1", "complete 0", "complete 1"], log);
    }

    [Fact]
    public void Copy_ABlockFailedByAnyRank_FailsForAll()
    {
        var (ranked, ranks, _) = Make();
        ranks[1].FailAtSubmit.Add(5);
        var failed = new byte[3];

        Assert.Equal(1, Copy(ranked, [4, 5, 6], failed));

        Assert.Equal([0, 1, 0], failed);
    }

    [Fact]
    public void Copy_ARankWhoseStreamFailed_FailsTheWholeBatch()
    {
        var (ranked, ranks, _) = Make();
        ranks[0].FailAtComplete = true;
        var failed = new byte[4];

        Assert.Equal(4, Copy(ranked, [0, 1, 2, 3], failed));

        Assert.All(failed, f => Assert.Equal(1, f));
    }

    [Fact]
    public void Copy_ARankThatThrows_LosesItsPartButEveryQueuedRankIsWaitedFor()
    {
        var (ranked, ranks, log) = Make();
        ranks[1].ThrowAtSubmit = true;
        var failed = new byte[2];

        Assert.Equal(2, Copy(ranked, [0, 1], failed));

        Assert.Contains("complete 0", log); // rank 0's copies may not outlive the batch
        Assert.All(failed, f => Assert.Equal(1, f));
    }
}
