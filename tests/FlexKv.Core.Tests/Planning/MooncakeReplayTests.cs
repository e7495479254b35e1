using FlexKv.Core.Errors;
using FlexKv.Core.Planning;

namespace FlexKv.Core.Tests.Planning;

public class MooncakeReplayTests
{
    private const int Bs = 16, Bt = 64;

    // (hash ids, input length, output length) per request: a shared first block, a conversation
    // that grows, a request cut inside its last block, one that shares nothing.
    private static readonly (long[] Hashes, int Input, int Output)[] Trace =
    [
        ([0, 1, 2], 3 * Bt, 20), ([0, 1, 2, 3], 3 * Bt + 40, 9), ([0, 5], Bt + 1, 0), ([0, 1, 2, 3, 4], 5 * Bt, 33),
        ([9], 17, 3), ([0, 1], 2 * Bt, 1),
    ];

    // The documented mapping, written out: hash h -> tokens h * Bt + k; output j -> -1 - j (numbered on).
    private static (long[] Tokens, long[] Prompt, long[] Total) Expanded()
    {
        var tokens = new List<long>();
        var prompt = new List<long>();
        var total = new List<long>();
        long output = 0;
        foreach (var (hashes, input, outLen) in Trace)
        {
            tokens.AddRange(hashes.SelectMany(h => Enumerable.Range(0, Bt).Select(k => h * Bt + k)).Take(input));
            for (int j = 0; j < outLen; j++) tokens.Add(-1 - output++);
            prompt.Add(input);
            total.Add(input + outLen);
        }
        return ([.. tokens], [.. prompt], [.. total]);
    }

    private static void Replay(MooncakeReplay m, TierPlanner p, int from, int to, long firstOutput, Span<int> cpu, Span<int> ssd)
    {
        var t = Trace[from..to];
        m.Replay(p, t.SelectMany(r => r.Hashes).ToArray(), t.Select(r => (long)r.Hashes.Length).ToArray(),
            t.Select(r => (long)r.Input).ToArray(), t.Select(r => (long)r.Output).ToArray(), Bt, firstOutput, cpu, ssd, default);
    }

    [Fact]
    public void HashIds_ReplayAsTheirTokens_AcrossCalls()
    {
        var (tokens, prompt, total) = Expanded();
        var byTokens = new TierPlanner(Bs, 12, 40);
        int n = Trace.Length;
        var cpu = new int[n];
        var ssd = new int[n];
        byTokens.Replay(tokens, prompt, total, cpu, ssd, default);

        var byHashes = new TierPlanner(Bs, 12, 40);
        var m = new MooncakeReplay();
        var cpu2 = new int[n];
        var ssd2 = new int[n];
        Replay(m, byHashes, 0, 3, 0, cpu2, ssd2);
        long outputsSoFar = Trace[..3].Sum(r => r.Output);
        Replay(m, byHashes, 3, n, outputsSoFar, cpu2.AsSpan(3), ssd2.AsSpan(3));

        Assert.Equal(cpu, cpu2);
        Assert.Equal(ssd, ssd2);
        Assert.True(cpu.Sum() + ssd.Sum() > 0);
        Assert.Equal(byTokens.Totals.SavedBlocks, byHashes.Totals.SavedBlocks);
        Assert.Equal(prompt.Sum(), byHashes.Totals.PromptTokens);
    }

    [Fact]
    public void RefusedArguments_ReplayNothing()
    {
        var p = new TierPlanner(Bs, 100, 0);
        var m = new MooncakeReplay();
        void Bad(long[] hashes, long[] counts, long[] input, long[] output, int bt = Bt) =>
            Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() =>
                m.Replay(p, hashes, counts, input, output, bt, 0, default, default, default)).Status);

        Bad([1, 2], [2], [2 * Bt + 1], [0]);       // input beyond its hash ids
        Bad([1, -2], [2], [Bt], [0]);              // negative hash id
        Bad([1, 2, 3], [2], [Bt], [0]);            // a hash id no request has
        Bad([1, 2], [1, 1], [Bt, Bt], [0]);        // lengths of different arrays
        Bad([1], [1], [Bt], [0], bt: 0);
        Bad([long.MaxValue / 2], [1], [Bt], [0]);  // its tokens would overflow
        // The first request is fine, the second is not: nothing is replayed.
        Bad([1, 2, 3], [1, 2], [Bt, 3 * Bt], [0, 0]);
        Assert.Equal(0, p.Totals.Requests);
    }
}
