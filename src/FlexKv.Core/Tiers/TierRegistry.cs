namespace FlexKv.Core.Tiers;

/// <summary>
/// The lower tiers an engine may have, hot to cold: each opener returns its tier when the
/// configuration asks for it, else null. A new tier is one folder and one line here.
/// </summary>
internal static class TierRegistry
{
    public static readonly Func<TierContext, ILowerTier?>[] Default =
    [
        Ssd.SsdTier.Open,
        Remote.RemoteTier.Open,
    ];
}
