using System.Text;
using FlexKv.Core.Engine;
using FlexKv.Core.Events;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Tests.Metrics;
using FlexKv.Core.Tests.Tiers.Ssd;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Events;

/// <summary>KV events as blocks are saved, promoted, evicted, dropped after a bad read and cleared, named by the hashes vLLM gave.</summary>
public class KvEngineEventsTests
{
    /// <summary>What a test hashes block <paramref name="i"/> of request prompt <paramref name="seed"/> to (vLLM's would be sha256).</summary>
    private static byte[] Hash(int seed, int i) => Encoding.ASCII.GetBytes($"vllm-hash-{seed:D4}-{i:D4}-0123456789ab"); // 32 bytes

    private static string Hex(ReadOnlySpan<byte> b) => Encoding.ASCII.GetString(b);

    private sealed record Ev(KvEventKind Kind, MetricTier Tier, string Hash, string? Parent);

    private static unsafe List<Ev> Take(EngineHarness h)
    {
        var buf = new KvEvent[5];
        var all = new List<Ev>();
        int n;
        while ((n = h.Engine.Events.Take(buf)) > 0)
            for (int i = 0; i < n; i++)
            {
                KvEvent e = buf[i];
                string hash = Hex(new ReadOnlySpan<byte>(e.Hash, e.HashLength));
                string? parent = e.ParentLength == 0 ? null : Hex(new ReadOnlySpan<byte>(e.Parent, e.ParentLength));
                all.Add(new Ev(e.Kind, (MetricTier)e.Medium, hash, parent));
            }
        return all;
    }

    /// <summary>Takes events until <paramref name="count"/> came (a tier's writes end on its own thread).</summary>
    private static List<Ev> TakeUntil(EngineHarness h, int count)
    {
        var all = new List<Ev>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (all.Count < count && sw.ElapsedMilliseconds < 10_000)
        {
            all.AddRange(Take(h));
            Thread.Sleep(2);
        }
        return all;
    }

    private static void GiveHashes(EngineHarness h, string id, int seed, int blocks) =>
        h.Engine.Events.SetBlockHashes(id, 0, Enumerable.Range(0, blocks).SelectMany(i => Hash(seed, i)).ToArray(), 32);

    /// <summary>A save whose request passed vLLM's hashes (the connector does it after its lookup).</summary>
    private static void Save(EngineHarness h, string id, long[] tokens, int[] blocks, int seed)
    {
        h.Engine.GetNumNewMatchedTokens(id, tokens, tokens.Length, 0);
        GiveHashes(h, id, seed, tokens.Length / Bs);
        h.Engine.UpdateStateAfterAlloc(id, blocks, 0);
        Assert.True(h.Engine.RequestFinished(id, tokens, tokens.Length, blocks, save: true));
        h.Engine.LaunchTasks();
        h.WaitFor(FinishedKind.Sending, id);
    }

    private static Ev Stored(MetricTier t, int seed, int i) => new(KvEventKind.Stored, t, Hex(Hash(seed, i)), i == 0 ? null : Hex(Hash(seed, i - 1)));

    private static Ev Removed(MetricTier t, int seed, int i) => new(KvEventKind.Removed, t, Hex(Hash(seed, i)), null);

    [Fact]
    public void SaveEvictionAndReset_AreStoredRemovedAndCleared_WithVllmsHashes()
    {
        using var h = new EngineHarness(cpuBlocks: 3);
        h.Engine.Events.Enable(64);
        long[] a = Tokens(3 * Bs + 1), b = Tokens(2 * Bs + 1, seed: 2);
        Save(h, "a", a, Blocks(0, 3), seed: 1);
        Assert.Equal([Stored(MetricTier.Cpu, 1, 0), Stored(MetricTier.Cpu, 1, 1), Stored(MetricTier.Cpu, 1, 2)], Take(h));

        Save(h, "b", b, Blocks(3, 2), seed: 2); // 2 of a's 3 blocks make room (leaves first: a's tail)
        List<Ev> got = Take(h);
        Assert.Equal([Removed(MetricTier.Cpu, 1, 2), Removed(MetricTier.Cpu, 1, 1), Stored(MetricTier.Cpu, 2, 0), Stored(MetricTier.Cpu, 2, 1)], got);

        h.Engine.Reset();
        Assert.Equal([new Ev(KvEventKind.Cleared, MetricTier.Cpu, "", null)], Take(h));
        var m = new MetricValues(h.Engine);
        Assert.Equal(8, m["kv_events_recorded"]);
        Assert.Equal(0, m["kv_events_dropped"]);
        Assert.Equal(0, m["kv_events_unhashed"]);
    }

    [Fact]
    public void BlocksWithoutAVllmHash_AreCountedNotRecorded_AndOffMeansNothing()
    {
        using var off = new EngineHarness();
        off.Save("a", Tokens(2 * Bs + 1), Blocks(0, 2));
        Assert.Empty(Take(off));
        Assert.Throws<FlexKv.Core.Errors.FlexKvException>(() => off.Engine.Events.SetBlockHashes("a", 0, Hash(1, 0), 32));

        using var h = new EngineHarness();
        h.Engine.Events.Enable(64);
        h.Save("a", Tokens(2 * Bs + 1), Blocks(0, 2)); // no hashes passed
        Assert.Empty(Take(h));
        Assert.Equal(2, new MetricValues(h.Engine)["kv_events_unhashed"]);
    }

    [Fact]
    public void EventsNotTaken_DropTheOldest()
    {
        using var h = new EngineHarness();
        h.Engine.Events.Enable(2);
        Save(h, "a", Tokens(3 * Bs + 1), Blocks(0, 3), seed: 1);
        Assert.Equal([Stored(MetricTier.Cpu, 1, 1), Stored(MetricTier.Cpu, 1, 2)], Take(h));
        Assert.Equal(1, new MetricValues(h.Engine)["kv_events_dropped"]);
    }

    [Fact]
    public void SsdWrites_Promotions_AndAFailedChecksum_AreEventsOfTheirTier()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        using var h = fx.Open(cpuBlocks: 3, flaky: true);
        h.Engine.Events.Enable(256);
        long[] a = Tokens(3 * Bs + 1);
        Save(h, "a", a, Blocks(0, 3), seed: 1);
        Assert.Equal([Stored(MetricTier.Cpu, 1, 0), Stored(MetricTier.Cpu, 1, 1), Stored(MetricTier.Cpu, 1, 2),
                      Stored(MetricTier.Ssd, 1, 0), Stored(MetricTier.Ssd, 1, 1), Stored(MetricTier.Ssd, 1, 2)], TakeUntil(h, 6));
        Save(h, "b", Tokens(3 * Bs + 1, seed: 4), Blocks(10, 3), seed: 2); // a leaves the CPU tier (SSD keeps it)
        List<Ev> got = TakeUntil(h, 9); // a's 3 CPU copies go, b's 3 blocks are stored in CPU and SSD
        Assert.Equal(3, got.Count(e => e.Kind == KvEventKind.Removed && e.Tier == MetricTier.Cpu && e.Hash.StartsWith("vllm-hash-0001-")));
        Assert.DoesNotContain(got, e => e.Tier == MetricTier.Ssd && e.Kind == KvEventKind.Removed);

        var (_, index, _) = h.Engine.Internals;
        var seq = new FlexKv.Core.Hashing.HashedSequence();
        seq.Begin(h.Engine.Internals.Hasher.SeedFor(ReadOnlySpan<byte>.Empty));
        seq.Extend(h.Engine.Internals.Hasher, a);
        lock (fx.Flaky!.CorruptReads) fx.Flaky.CorruptReads.Add(index.TierSlotOf(index.Lookup(seq.Keys[1]), 0));
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("c", a, a.Length, 0));
        GiveHashes(h, "c", 1, 3);
        h.Load("c", Blocks(20, 3), 3 * Bs);
        got = Take(h).Where(e => e.Hash.StartsWith("vllm-hash-0001-")).ToList(); // b's blocks make room too (CPU removals)
        Assert.Equal([Stored(MetricTier.Cpu, 1, 0), Removed(MetricTier.Ssd, 1, 1), Stored(MetricTier.Cpu, 1, 2)], got);
    }

    [Fact]
    public void RemoteWrites_AreStoredInTheStore_AndALostValueIsRemovedFromIt()
    {
        var store = new InMemoryRemoteStore();
        using var a = new EngineHarness(remote: store);
        a.Engine.Events.Enable(64);
        long[] tokens = Tokens(2 * Bs + 1);
        Save(a, "a", tokens, Blocks(0, 2), seed: 3);
        List<Ev> got = TakeUntil(a, 4);
        Assert.Equal([Stored(MetricTier.Cpu, 3, 0), Stored(MetricTier.Cpu, 3, 1), Stored(MetricTier.Remote, 3, 0), Stored(MetricTier.Remote, 3, 1)], got);

        using var b = new EngineHarness(remote: store);
        b.Engine.Events.Enable(64);
        Assert.Equal(2 * Bs, b.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        GiveHashes(b, "b", 3, 2);
        store.Values.Clear(); // the store evicted them meanwhile
        b.Load("b", Blocks(10, 2), 2 * Bs);
        Assert.Equal([Removed(MetricTier.Remote, 3, 0), Removed(MetricTier.Remote, 3, 1)], Take(b));
    }
}
