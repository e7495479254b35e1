namespace FlexKv.Core.Metrics;

/// <summary>How much of what a lookup asked about (the full blocks beyond vLLM's own hit) it offered (label <c>outcome</c>).</summary>
internal enum LookupOutcome
{
    /// <summary>Every block.</summary>
    Full = 0,
    /// <summary>Some blocks, not all.</summary>
    Partial = 1,
    /// <summary>None.</summary>
    Miss = 2,
}

internal static class LookupOutcomes
{
    public const int Count = 3;

    public static readonly string[] Labels = ["full", "partial", "miss"];
}
