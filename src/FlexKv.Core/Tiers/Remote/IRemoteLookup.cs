namespace FlexKv.Core.Tiers.Remote;

/// <summary>
/// A presence check in flight: which leading keys of a run the store holds. The engine polls it
/// (never waits on it) from later lookups of the same request, so a slow or frozen store costs
/// a scheduler step nothing. Implementations are safe to poll from any thread.
/// </summary>
internal interface IRemoteLookup
{
    /// <summary>Whether <see cref="Present"/> is final: every key up to the first missing one was answered.</summary>
    bool IsCompleted { get; }

    /// <summary>How many leading keys the store holds (meaningful once completed).</summary>
    int Present { get; }
}

/// <summary>The answer of a store that knows at once (in-memory stores, a store that is down).</summary>
internal sealed class CompletedLookup(int present) : IRemoteLookup
{
    /// <summary>No key is held.</summary>
    public static readonly CompletedLookup None = new(0);

    /// <inheritdoc />
    public bool IsCompleted => true;

    /// <inheritdoc />
    public int Present { get; } = present;
}
