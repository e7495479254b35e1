using FlexKv.Core.Index;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tiers;

namespace FlexKv.Core.Engine;

/// <summary>
/// What an answered lookup adds to the metrics: its outcome, the offered tokens by the tier a
/// load reads them from (as the index says at lookup time), and the blocks it did not offer under
/// the reason the offer ended. Runs on the scheduler thread under the engine lock, after the
/// match; costs a pass over the offered blocks only when lower tiers exist.
/// </summary>
internal sealed class OfferMetrics(BlockIndex index, TierSet tiers, EngineMetrics metrics, int tokensPerBlock)
{
    private readonly long[] _byTier = new long[MetricTiers.Count];

    /// <summary>
    /// Blocks [computed, computed + offered) of <paramref name="s"/> were offered, the rest up to
    /// <paramref name="blocks"/> not; <paramref name="stop"/> is why when the planner knows
    /// (else the index says why the first of them is not readable).
    /// </summary>
    public void Record(RequestState s, int blocks, int computedBlocks, int offered, NotOfferedReason? stop)
    {
        int asked = blocks - computedBlocks;
        if (asked <= 0) return;
        metrics.Lookup(offered == asked ? LookupOutcome.Full : offered == 0 ? LookupOutcome.Miss : LookupOutcome.Partial);
        if (offered > 0)
        {
            CountByTier(s, computedBlocks, offered);
            if (!s.MatchCounted)
            {
                s.MatchCounted = true;
                metrics.Request(RequestEvent.Matched);
            }
        }
        if (offered < asked)
            metrics.NotOffered(stop ?? index.WhyNotReadable(s.Sequence.Keys[computedBlocks + offered]), asked - offered);
    }

    private void CountByTier(RequestState s, int computedBlocks, int offered)
    {
        if (!tiers.Any)
        {
            metrics.Matched(MetricTier.Cpu, (long)offered * tokensPerBlock);
            return;
        }
        Array.Clear(_byTier);
        for (int i = computedBlocks; i < computedBlocks + offered; i++)
        {
            int node = s.MatchNodes[i];
            MetricTier tier = index.StateOf(node) == BlockState.Ready ? MetricTier.Cpu
                : index.FirstReadableTier(node) is >= 0 and var t ? tiers.LabelOf(t) : MetricTier.None;
            if (tier != MetricTier.None) _byTier[(int)tier]++;
        }
        for (int t = 0; t < MetricTiers.Count; t++) metrics.Matched((MetricTier)t, _byTier[t] * tokensPerBlock);
    }
}
