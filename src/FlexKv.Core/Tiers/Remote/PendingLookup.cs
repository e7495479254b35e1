namespace FlexKv.Core.Tiers.Remote;

/// <summary>
/// A request's presence check in flight: blocks [<see cref="Start"/>, Start + <see cref="Count"/>)
/// of its sequence, started at <see cref="StartedMs"/>; <see cref="Probe"/> when it is the one
/// lookup a half-open <see cref="LookupBreaker"/> let through.
/// </summary>
internal sealed record PendingLookup(IRemoteLookup Answer, int Start, int Count, long StartedMs, bool Probe);
