using System.Collections.Concurrent;
using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Core.Tests.Fakes;

/// <summary>A remote store in a dictionary, shared by engines like a Redis server, with switches for faults.</summary>
internal sealed unsafe class InMemoryRemoteStore : IRemoteStore
{
    public ConcurrentDictionary<UInt128, byte[]> Values { get; } = new();
    public volatile bool Down;
    /// <summary>While set, reads answer "unavailable" (a store that stops answering reads only).</summary>
    public volatile bool FailGets;
    public int Deletes;

    public bool IsConnected => !Down;
    public string Description => "in-memory";

    /// <summary>While set, presence checks get no answer (a frozen server, CLIENT PAUSE); clearing it answers them.</summary>
    public volatile bool Frozen;

    public int Lookups;

    public IRemoteLookup BeginCountPresent(ReadOnlySpan<UInt128> keys)
    {
        Interlocked.Increment(ref Lookups);
        if (Down) return CompletedLookup.None;
        int n = 0;
        while (n < keys.Length && Values.ContainsKey(keys[n])) n++;
        return Frozen ? new FrozenLookup(this, n) : new CompletedLookup(n);
    }

    private sealed class FrozenLookup(InMemoryRemoteStore store, int present) : IRemoteLookup
    {
        public bool IsCompleted => !store.Frozen;
        public int Present => present;
    }

    public void Put(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<bool> ok)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            if (Down) { ok[i] = false; continue; }
            Values[keys[i]] = new ReadOnlySpan<byte>((void*)buffers[i], bytes).ToArray();
            ok[i] = true;
        }
    }

    /// <summary>Reads wait here until it is set (a server that does not answer reads yet).</summary>
    public ManualResetEventSlim ReadsAnswer { get; } = new(initialState: true);

    public void Get(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results)
    {
        ReadsAnswer.Wait(TimeSpan.FromSeconds(30));
        for (int i = 0; i < keys.Length; i++)
        {
            if (Down || FailGets) { results[i] = RemoteReadResult.Unavailable; continue; }
            if (!Values.TryGetValue(keys[i], out byte[]? v)) { results[i] = RemoteReadResult.Missing; continue; }
            if (v.Length != bytes) { results[i] = RemoteReadResult.Corrupt; continue; }
            v.CopyTo(new Span<byte>((void*)buffers[i], bytes));
            results[i] = RemoteReadResult.Ok;
        }
    }

    public void Delete(UInt128 key)
    {
        Interlocked.Increment(ref Deletes);
        Values.TryRemove(key, out _);
    }

    public long DeleteAll(int budgetMs)
    {
        long n = Values.Count;
        Values.Clear();
        return n;
    }

    public void Dispose() { }
}
