using System.Collections.Concurrent;
using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Core.Tests.Fakes;

/// <summary>A remote store in a dictionary, shared by engines like a Redis server, with switches for faults.</summary>
internal sealed unsafe class InMemoryRemoteStore : IRemoteStore
{
    public ConcurrentDictionary<UInt128, byte[]> Values { get; } = new();
    public volatile bool Down;
    public int Deletes;

    public bool IsConnected => !Down;
    public string Description => "in-memory";

    public int CountPresent(ReadOnlySpan<UInt128> keys, int budgetMs)
    {
        if (Down) return 0;
        int n = 0;
        while (n < keys.Length && Values.ContainsKey(keys[n])) n++;
        return n;
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

    public void Get(ReadOnlySpan<UInt128> keys, ReadOnlySpan<nint> buffers, int bytes, Span<RemoteReadResult> results)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            if (Down) { results[i] = RemoteReadResult.Unavailable; continue; }
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
