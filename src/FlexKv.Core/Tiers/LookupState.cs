using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Core.Tiers;

/// <summary>A lookup-capable tier's counters and breaker (the engine updates them under its lock).</summary>
internal sealed class LookupState
{
    public readonly LookupBreaker Breaker = new();
    public long Lookups, Late, Matched;
}
