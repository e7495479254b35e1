using FlexKv.Core.Errors;
using FlexKv.Core.Planning;
using FlexKv.Core.Tests.Index;

namespace FlexKv.Core.Tests.Planning;

public class TierPlannerTests
{
    private const int Bs = 4;

    private static (long[] Tokens, long[] Prompt, long[] Total) Pack(IEnumerable<(long[] Prompt, long[] All)> requests)
    {
        var tokens = new List<long>();
        var prompt = new List<long>();
        var total = new List<long>();
        foreach (var (p, all) in requests)
        {
            tokens.AddRange(all);
            prompt.Add(p.Length);
            total.Add(all.Length);
        }
        return ([.. tokens], [.. prompt], [.. total]);
    }

    private static List<(long[] Prompt, long[] All)> Chat(int seed) =>
        ChatWorkload.Generate(seed).Select(s => (s.Prompt, s.Finished ?? s.Prompt)).ToList();

    // Blocks named exactly by (parent, tokens): what an unlimited cache must match.
    private static long ClosedForm(List<(long[] Prompt, long[] All)> requests)
    {
        var ids = new Dictionary<(int, string), int>();
        long matched = 0;
        foreach (var (prompt, all) in requests)
        {
            int parent = -1;
            for (int i = 0; i < prompt.Length / Bs; i++)
            {
                if (!ids.TryGetValue((parent, string.Join(',', prompt.Skip(i * Bs).Take(Bs))), out parent)) break;
                matched += Bs;
            }
            parent = -1;
            for (int i = 0; i < (all.Length - 1) / Bs; i++)
            {
                var key = (parent, string.Join(',', all.Skip(i * Bs).Take(Bs)));
                if (!ids.TryGetValue(key, out int id)) ids[key] = id = ids.Count;
                parent = id;
            }
        }
        return matched;
    }

    [Fact]
    public void Unlimited_MatchesTheClosedForm_AllFromCpu()
    {
        var chat = Chat(3);
        var (tokens, prompt, total) = Pack(chat);
        var p = new TierPlanner(Bs, int.MaxValue, 0);
        p.Replay(tokens, prompt, total, default, default, default);
        long want = ClosedForm(chat);
        Assert.True(want > 0);
        Assert.Equal(want, p.Totals.CpuHitBlocks * Bs);
        Assert.Equal(0, p.Totals.SsdHitBlocks);
        Assert.Equal(0, p.Index.Evictions);
        Assert.Equal(prompt.Sum(), p.Totals.PromptTokens);
    }

    [Fact]
    public void Replay_InChunks_EqualsOneReplay()
    {
        var (tokens, prompt, total) = Pack(Chat(5));
        var whole = new TierPlanner(Bs, 40, 120);
        int n = prompt.Length;
        var cpu = new int[n];
        var ssd = new int[n];
        var lost = new int[n];
        whole.Replay(tokens, prompt, total, cpu, ssd, lost);

        var chunked = new TierPlanner(Bs, 40, 120);
        int half = n / 2, split = (int)total.Take(half).Sum();
        var cpu2 = new int[n];
        var ssd2 = new int[n];
        chunked.Replay(tokens.AsSpan(0, split), prompt.AsSpan(0, half), total.AsSpan(0, half), cpu2, ssd2, default);
        chunked.Replay(tokens.AsSpan(split), prompt.AsSpan(half), total.AsSpan(half), cpu2.AsSpan(half), ssd2.AsSpan(half), default);

        Assert.Equal(cpu, cpu2);
        Assert.Equal(ssd, ssd2);
        Assert.True(ssd.Sum() > 0 && whole.SsdEvictions > 0 && whole.Index.Evictions > 0);
        Assert.Equal(whole.Totals.SsdWrittenBlocks, chunked.Totals.SsdWrittenBlocks);
    }

    [Fact]
    public void SsdMatch_LargerThanTheCpuTier_IsCutWhereStagingWouldNotFit()
    {
        // A sequence grown 4 blocks at a time through a CPU tier of 4 slots reaches SSD whole
        // (a save larger than the CPU tier would drop its tail); 4 other blocks then take the CPU.
        long[] a = Enumerable.Range(0, 12 * Bs + 1).Select(i => (long)i).ToArray();
        long[] b = Enumerable.Range(1000, 4 * Bs + 1).Select(i => (long)i).ToArray();
        long[] a1 = a[..(4 * Bs + 1)], a2 = a[..(8 * Bs + 1)], again = a[..(12 * Bs)];
        var p = new TierPlanner(Bs, 4, 100);
        var (tokens, prompt, total) = Pack([(a1, a1), (a2, a2), (a, a), (b, b)]);
        p.Replay(tokens, prompt, total, default, default, default);
        Assert.Equal(16, p.Totals.SsdWrittenBlocks);
        Assert.Equal(0, p.Totals.DroppedBlocks);
        long cutBefore = p.Totals.StagingCutBlocks; // a's own match was cut too: half of it was pinned in CPU

        (tokens, prompt, total) = Pack([(again, again)]);
        var cpu = new int[1];
        var ssd = new int[1];
        var lost = new int[1];
        p.Replay(tokens, prompt, total, cpu, ssd, lost);
        Assert.Equal((0, 4, 0), (cpu[0], ssd[0], lost[0])); // as many as 4 CPU slots can stage, all from SSD
        Assert.Equal(8, p.Totals.StagingCutBlocks - cutBefore);
    }

    [Fact]
    public void Save_LargerThanTheCpuTier_DropsItsTail()
    {
        long[] a = Enumerable.Range(0, 12 * Bs + 1).Select(i => (long)i).ToArray();
        var p = new TierPlanner(Bs, 4, 100);
        var (tokens, prompt, total) = Pack([(a, a)]);
        p.Replay(tokens, prompt, total, default, default, default);
        Assert.Equal((4, 8), (p.Totals.SavedBlocks, p.Totals.DroppedBlocks)); // every slot is being written
        Assert.Equal(4, p.Totals.SsdWrittenBlocks);
    }

    [Fact]
    public void Save_StopsAtAllButTheLastToken()
    {
        long[] seq = Enumerable.Range(0, 3 * Bs).Select(i => (long)i).ToArray(); // exactly 3 blocks
        var p = new TierPlanner(Bs, 100, 0);
        var (tokens, prompt, total) = Pack([(seq, seq), (seq, seq)]);
        var cpu = new int[2];
        p.Replay(tokens, prompt, total, cpu, default, default);
        Assert.Equal(2, p.Totals.SavedBlocks); // the last token's KV is never computed: its block is not saved
        Assert.Equal([0, 2], cpu);
    }

    [Fact]
    public void BadArguments_AreInvalidArgumentErrors()
    {
        Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() => new TierPlanner(0, 10, 0)).Status);
        Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() => new TierPlanner(Bs, 0, 0)).Status);
        Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() => new TierPlanner(Bs, 10, -1)).Status);
        var p = new TierPlanner(Bs, 10, 0);
        long[] t = new long[8];
        var e = Assert.Throws<FlexKvException>(() => p.Replay(t, [4], [9], default, default, default));
        Assert.Contains("do not fit", e.Message);
        Assert.Throws<FlexKvException>(() => p.Replay(t, [4, 4], [4], default, default, default));
        Assert.Throws<FlexKvException>(() => p.Replay(t, [4, 4], [4, 4], new int[1], default, default)); // an output per request
    }
}
