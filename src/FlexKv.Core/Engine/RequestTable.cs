using FlexKv.Core.Hashing;

namespace FlexKv.Core.Engine;

/// <summary>
/// The requests the engine tracks, looked up by id without allocating (ids arrive as UTF-8 and
/// are decoded onto the stack), plus the ids of recently finished requests, so that a second
/// request_finished for one is refused instead of starting a new request. States are pooled.
/// Owned by the engine lock.
/// </summary>
internal sealed class RequestTable
{
    private readonly object _owner;
    private const int RecentlyFinishedLimit = 65_536;
    private readonly Dictionary<string, RequestState> _requests = new();
    private readonly Dictionary<string, RequestState>.AlternateLookup<ReadOnlySpan<char>> _bySpan;
    private readonly HashSet<string> _recentlyFinished = new();
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _recentlyFinishedBySpan;
    private readonly Queue<string> _recentlyFinishedOrder = new();
    private readonly Stack<RequestState> _spare = new();

    public RequestTable(object owner)
    {
        _owner = owner;
        _bySpan = _requests.GetAlternateLookup<ReadOnlySpan<char>>();
        _recentlyFinishedBySpan = _recentlyFinished.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _requests.Count;

    public Dictionary<string, RequestState>.ValueCollection All => _requests.Values;

    public RequestState? Find(ReadOnlySpan<char> id) => _bySpan.TryGetValue(id, out var s) ? s : null;

    public bool RecentlyFinished(ReadOnlySpan<char> id) => _recentlyFinishedBySpan.Contains(id);

    /// <summary>Starts tracking a request whose blocks are hashed from <paramref name="seed"/>.</summary>
    public RequestState Add(ReadOnlySpan<char> id, UInt128 seed)
    {
        LockOwner.Holds(_owner, "the request table");
        var s = _spare.Count > 0 ? _spare.Pop() : new RequestState();
        s.Id = id.ToString();
        s.Sequence.Begin(seed);
        _requests.Add(s.Id, s);
        _recentlyFinishedBySpan.Remove(id);
        return s;
    }

    /// <summary>Stops tracking a request (its tasks ended) and remembers that it finished.</summary>
    public void Forget(RequestState s)
    {
        LockOwner.Holds(_owner, "the request table");
        _requests.Remove(s.Id);
        if (_recentlyFinished.Add(s.Id))
        {
            _recentlyFinishedOrder.Enqueue(s.Id);
            if (_recentlyFinishedOrder.Count > RecentlyFinishedLimit) _recentlyFinished.Remove(_recentlyFinishedOrder.Dequeue());
        }
        s.Reset();
        _spare.Push(s);
    }
}
