using FlexKv.Core.Index;

namespace FlexKv.Core.Tests.Index;

public class PrefixCacheReferenceTests
{
    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 4)]
    [InlineData(3, 1)]
    [InlineData(4, 16)]
    public void Replay_UnlimitedCapacity_MatchesTheReferenceExactly(int seed, int tokensPerBlock)
    {
        var cache = new PrefixCache(tokensPerBlock, capacityBlocks: 100_000);
        var reference = new ReferencePrefixCache(tokensPerBlock);
        int steps = 0, hits = 0;

        foreach (var step in ChatWorkload.Generate(seed))
        {
            int expected = reference.Match(step.Prompt);
            Assert.Equal(expected, cache.Match(step.Sequence, step.Prompt));
            if (expected > 0) hits++;
            if (step.Finished is null)
                Assert.True(cache.Forget(step.Sequence));
            else
                Assert.Equal(reference.Insert(step.Finished), cache.Insert(step.Sequence, step.Finished));
            steps++;
        }

        Assert.Equal(0, cache.Index.Evictions);
        Assert.True(hits > steps / 2, $"only {hits} of {steps} steps hit; the workload does not exercise matching");
    }

    [Theory]
    [InlineData(5, 16)]
    [InlineData(6, 40)]
    public void Replay_SmallCapacity_NeverExceedsItAndNeverBeatsTheReference(int seed, int capacity)
    {
        const int bs = 4;
        var cache = new PrefixCache(bs, capacity);
        var reference = new ReferencePrefixCache(bs);

        foreach (var step in ChatWorkload.Generate(seed))
        {
            int got = cache.Match(step.Sequence, step.Prompt);
            Assert.True(got <= reference.Match(step.Prompt), "a bounded cache cannot hit more than an unbounded one");
            Assert.Equal(0, got % bs);
            if (step.Finished is null) { cache.Forget(step.Sequence); continue; }

            cache.Insert(step.Sequence, step.Finished);
            reference.Insert(step.Finished);
            Assert.True(cache.Index.Count <= capacity);
            Assert.True(cache.Index.UsedSlots <= capacity);

            // A sequence that fits is fully cached right after its insert: eviction takes other leaves.
            int blocks = step.Finished.Length / bs;
            if (blocks <= capacity)
                Assert.Equal(blocks * bs, cache.Match(-1 - step.Sequence, step.Finished));
            cache.Forget(-1 - step.Sequence);
        }

        Assert.True(cache.Index.Evictions > 0);
    }

    [Theory]
    [InlineData(7, 4)]
    [InlineData(8, 16)]
    public void Replay_WholeTraceInOneCall_MatchesTheReferenceExactly(int seed, int tokensPerBlock)
    {
        var steps = ChatWorkload.Generate(seed).ToArray();
        long[] tokens = steps.SelectMany(s => s.Finished ?? s.Prompt).ToArray();
        long[] prompts = steps.Select(s => (long)s.Prompt.Length).ToArray();
        long[] totals = steps.Select(s => (long)(s.Finished ?? s.Prompt).Length).ToArray();
        var matched = new int[steps.Length];
        var reference = new ReferencePrefixCache(tokensPerBlock);

        long total = new PrefixCache(tokensPerBlock, 100_000).Replay(tokens, prompts, totals, matched);

        var expected = new int[steps.Length];
        for (int i = 0; i < steps.Length; i++)
        {
            expected[i] = reference.Match(steps[i].Prompt);
            reference.Insert(steps[i].Finished ?? steps[i].Prompt);
        }
        Assert.Equal(expected, matched);
        Assert.Equal(expected.Sum(), total);
    }

    // The one-call replay recognizes blocks it inserted earlier in the call by their tokens
    // instead of hashing them; with evictions, and over a second call on the same cache (whose
    // earlier blocks' tokens are gone), it must still give what match-then-insert gives.
    [Theory]
    [InlineData(9, 4, 64)]
    [InlineData(10, 16, 40)]
    [InlineData(11, 4, 100_000)]
    public void Replay_InOneCall_EqualsMatchThenInsert_WithEvictionsAndAcrossCalls(int seed, int tokensPerBlock, int capacity)
    {
        var steps = ChatWorkload.Generate(seed).ToArray();
        long[] tokens = steps.SelectMany(s => s.Finished ?? s.Prompt).ToArray();
        long[] prompts = steps.Select(s => (long)s.Prompt.Length).ToArray();
        long[] totals = steps.Select(s => (long)(s.Finished ?? s.Prompt).Length).ToArray();
        var replayed = new PrefixCache(tokensPerBlock, capacity);
        var stepwise = new PrefixCache(tokensPerBlock, capacity);
        for (int call = 0; call < 2; call++)
        {
            var matched = new int[steps.Length];
            replayed.Replay((long[])tokens.Clone(), prompts, totals, matched);
            for (int i = 0; i < steps.Length; i++)
            {
                long[] all = steps[i].Finished ?? steps[i].Prompt;
                Assert.Equal(stepwise.Match(i, steps[i].Prompt), matched[i]);
                stepwise.Insert(i, all);
            }
            Assert.Equal(stepwise.Index.Count, replayed.Index.Count);
            Assert.Equal(stepwise.Index.Evictions, replayed.Index.Evictions);
        }
        if (capacity < 1000) Assert.True(replayed.Index.Evictions > 0);
    }
}
