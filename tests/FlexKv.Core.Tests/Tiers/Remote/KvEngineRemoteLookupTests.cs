using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;

namespace FlexKv.Core.Tests.Tiers.Remote;

/// <summary>
/// Lookups never wait on the remote store: the question goes out and the answer is polled by the
/// request's next lookups (-1 meanwhile: vLLM asks again next step); a late answer is a miss and
/// opens the breaker, so a frozen store costs each step nothing.
/// </summary>
public class KvEngineRemoteLookupTests
{
    private const int Bs = EngineHarness.Bs;
    private const int Pending = -1;

    private static (InMemoryRemoteStore Store, long[] Tokens) Shared(int blocks)
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(blocks * Bs + 1);
        using var writer = new EngineHarness(remote: store);
        writer.Save("w", tokens, EngineHarness.Blocks(0, blocks));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (store.Values.Count < blocks) { Assert.True(sw.ElapsedMilliseconds < 10_000); Thread.Sleep(2); }
        return (store, tokens);
    }

    private static EngineHarness Reader(InMemoryRemoteStore store, int budgetMs) =>
        new(remote: store, extraConfig: $",\"remote_lookup_budget_ms\":{budgetMs}");

    [Fact]
    public void FrozenStore_LookupReturnsPendingAtOnce_ThenTheAnswerWhenItComes()
    {
        var (store, tokens) = Shared(4);
        using var h = Reader(store, budgetMs: 10_000);
        store.Frozen = true;
        int before = store.Lookups;
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0)); // still no answer
        Assert.Equal(before + 1, store.Lookups); // asked once, polled since
        store.Frozen = false;
        Assert.Equal(4 * Bs, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(10, 4);
        h.Load("r", dst, 4 * Bs);
        Assert.Empty(h.FailedBlocks);
        Assert.Equal(0, h.Engine.Stats().RemoteLookupsLate);
    }

    [Fact]
    public void LateAnswer_IsAMiss_AndTheBreakerStopsAskingUntilItRecovers()
    {
        var (store, tokens) = Shared(3);
        using var h = Reader(store, budgetMs: 50);
        store.Frozen = true;
        int before = store.Lookups;
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0));
        Thread.Sleep(80);
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0)); // over budget: a miss
        var stats = h.Engine.Stats();
        Assert.Equal(1, stats.RemoteLookupsLate);
        Assert.True(stats.RemoteBreakerOpen);

        // While open, other requests get their local answer at once and the store is not asked.
        for (int i = 0; i < 50; i++)
            Assert.Equal(0, h.Engine.GetNumNewMatchedTokens($"n{i}", tokens, tokens.Length, 0));
        Assert.Equal(before + 1, store.Lookups);

        // After the cool-down one request probes; an answer in time closes the breaker.
        Thread.Sleep(1_100);
        store.Frozen = false;
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("probe", tokens, tokens.Length, 0));
        Assert.False(h.Engine.Stats().RemoteBreakerOpen);
        Assert.Equal(before + 2, store.Lookups);
        foreach (string id in new[] { "a", "probe" }.Concat(Enumerable.Range(0, 50).Select(i => $"n{i}")))
            h.Engine.RequestFinished(id, [], tokens.Length, [], save: false);
        h.AssertIdle();
    }

    [Fact]
    public void AFinishedRequestsPendingProbe_DoesNotKeepTheBreakerShut()
    {
        var (store, tokens) = Shared(2);
        using var h = Reader(store, budgetMs: 50);
        store.Frozen = true;
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0));
        Thread.Sleep(80);
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("a", tokens, tokens.Length, 0)); // breaker opens
        Thread.Sleep(1_100);
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("probe", tokens, tokens.Length, 0));
        h.Engine.RequestFinished("probe", [], tokens.Length, [], save: false); // the probe's request is gone
        store.Frozen = false;
        int before = store.Lookups;
        int got = h.Engine.GetNumNewMatchedTokens("next", tokens, tokens.Length, 0);
        Assert.Equal(before + 1, store.Lookups); // a new probe went out
        Assert.Equal(2 * Bs, got);
        h.Engine.RequestFinished("a", [], tokens.Length, [], save: false);
        h.Engine.RequestFinished("next", [], tokens.Length, [], save: false);
        h.AssertIdle();
    }

    [Fact]
    public void PendingLookup_KeepsTheLocalRunPinned_AndOffersLocalPlusRemote()
    {
        var (store, tokens) = Shared(4);
        using var h = Reader(store, budgetMs: 10_000);
        h.FillDevice(EngineHarness.Blocks(0, 2), 5);
        h.Save("local", tokens[..(2 * Bs + 1)], EngineHarness.Blocks(0, 2)); // blocks 0-1 also local
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (h.Engine.Stats().PinnedBlocks > 0) { Assert.True(sw.ElapsedMilliseconds < 10_000); Thread.Sleep(2); } // write-through done
        store.Frozen = true;
        Assert.Equal(Pending, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        Assert.Equal(2, h.Engine.Stats().PinnedBlocks);
        store.Frozen = false;
        Assert.Equal(4 * Bs, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        h.Engine.RequestFinished("r", [], tokens.Length, [], save: false);
        h.AssertIdle();
    }
}

/// <summary>A reset never waits for a remote store that does not answer.</summary>
public class KvEngineRemoteResetTests
{
    private const int Bs = EngineHarness.Bs;

    [Fact]
    public void Reset_WithARemoteReadOut_ReturnsAtOnce_AndClearsWhenTheReadEnds()
    {
        var store = new InMemoryRemoteStore();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using (var writer = new EngineHarness(remote: store))
        {
            writer.Save("w", tokens, EngineHarness.Blocks(0, 3));
            var w = System.Diagnostics.Stopwatch.StartNew();
            while (store.Values.Count < 3) { Assert.True(w.ElapsedMilliseconds < 10_000); Thread.Sleep(2); }
        }
        using var h = new EngineHarness(remote: store);
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("r", tokens, tokens.Length, 0));
        store.ReadsAnswer.Reset(); // the store stops answering reads
        h.Engine.UpdateStateAfterAlloc("r", EngineHarness.Blocks(0, 3), 3 * Bs);
        h.Engine.LaunchTasks();

        var sw = System.Diagnostics.Stopwatch.StartNew();
        h.Engine.Reset();
        Assert.True(sw.ElapsedMilliseconds < 5_000, $"reset took {sw.ElapsedMilliseconds} ms");
        Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("q", tokens, tokens.Length, 0)); // nothing offered meanwhile

        store.ReadsAnswer.Set();
        h.WaitFor(FlexKv.Core.Engine.FinishedKind.Recving, "r"); // the cancelled load is still reported
        h.Engine.RequestFinished("r", [], tokens.Length, [], save: false);
        h.Engine.RequestFinished("q", [], tokens.Length, [], save: false);
        h.AssertIdle();
        Assert.Equal(0, h.Engine.Stats().CpuBlocksUsed); // cleared once the read ended
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("again", tokens, tokens.Length, 0)); // the store still has them
        h.Engine.RequestFinished("again", [], tokens.Length, [], save: false);
    }
}
