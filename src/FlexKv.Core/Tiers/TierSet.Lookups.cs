using FlexKv.Core.Engine;
using FlexKv.Core.Metrics;
using FlexKv.Core.Tiers.Remote;

namespace FlexKv.Core.Tiers;

internal sealed partial class TierSet
{
    /// <summary>What a lookup returns while a tier's answer is awaited (vLLM: "ask me again later").</summary>
    public const int MatchPending = -1;

    /// <summary>
    /// After the local prefix: ask the first tier that has lookups (a shared store) about the
    /// blocks beyond it. The question goes out in one pipelined round trip and the answer is polled
    /// by the request's later lookups (vLLM asks again every step while the request waits), so no
    /// scheduler step ever waits on the store. An answer later than <paramref name="budgetMs"/> is
    /// a miss and opens the tier's breaker; blocks it holds join the match (pinned) and are
    /// loaded through CPU slots. When vLLM holds the first blocks and the local index does not,
    /// the blocks after vLLM's hit are asked about and join as a detached run.
    /// Returns where the match ends, or <see cref="MatchPending"/>.
    /// </summary>
    public int ExtendMatch(RequestState s, int local, int blocks, int computedBlocks, int budgetMs)
    {
        LookupStop = null;
        int t = LookupTier();
        int from = Math.Max(local, computedBlocks);
        if (t < 0 || from >= blocks)
        {
            DropLookup(s);
            return local;
        }
        ILowerTier tier = _tiers[t];
        LookupState state = tier.Lookups!;
        int parent = local >= from && from > 0 ? s.MatchNodes[from - 1] : -1;
        long now = Environment.TickCount64;
        if (s.RemoteLookup is { } pending)
        {
            if (pending.Start != from) DropLookup(s); // the local run changed under it: the answer does not fit
            else if (pending.Answer.IsCompleted)
            {
                s.RemoteLookup = null;
                // Seen within the budget, the store is well; seen later, the answer is still
                // good (it came before this poll) but says nothing about the store now.
                if (now - pending.StartedMs < budgetMs || pending.Probe) state.Breaker.Answered();
                return InsertHintRun(s, t, from, parent, pending.Answer.Present, local);
            }
            else if (now - pending.StartedMs < budgetMs) return MatchPending;
            else
            {
                s.RemoteLookup = null;
                state.Late++;
                state.Breaker.Late(now, pending.Probe);
                LookupStop = NotOfferedReason.RemoteOverBudget;
                return local;
            }
        }
        if (from < s.RemoteAskedUpTo || budgetMs == 0) return local;
        if (!tier.IsAvailable)
        {
            LookupStop = NotOfferedReason.RemoteDown;
            return local;
        }
        if (!state.Breaker.TryStart(now, out bool probe))
        {
            LookupStop = NotOfferedReason.RemoteOverBudget;
            return local;
        }
        int ask = Math.Min(blocks - from, MaxLookupBlocks);
        state.Lookups++;
        s.RemoteAskedUpTo = from + ask;
        IRemoteLookup answer = tier.BeginLookup(s.Sequence.Keys.Slice(from, ask));
        if (answer.IsCompleted)
        {
            state.Breaker.Answered();
            return InsertHintRun(s, t, from, parent, answer.Present, local);
        }
        s.RemoteLookup = new PendingLookup(answer, from, ask, now, probe);
        return MatchPending;
    }

    private const int MaxLookupBlocks = 4096;

    /// <summary>Why the last <see cref="ExtendMatch"/> did not extend the match (a store late, open-breakered or down); null otherwise.</summary>
    public NotOfferedReason? LookupStop { get; private set; }

    private int LookupTier()
    {
        for (int t = 0; t < _tiers.Length; t++)
            if (_tiers[t].Lookups is not null) return t;
        return -1;
    }

    // The tier holds blocks [from, from + present): they join the match, pinned as inserted
    // (under parent, or as a detached run after vLLM's own hit). Returns where the match ends.
    private int InsertHintRun(RequestState s, int t, int from, int parent, int present, int local)
    {
        if (present == 0) return local;
        long clock = _index.Tick();
        for (int i = from; i < from + present; i++)
        {
            int id = _index.InsertHint(t, s.Sequence.Keys[i], parent, clock);
            if (id < 0) return i == from ? local : i; // known locally but not readable (e.g. being written): stop here
            s.MatchNodes[i] = id;
            _index.SetExternalHash(id, s.HashOf(i));
            parent = id;
            _tiers[t].Lookups!.Matched++;
        }
        return from + present;
    }

    /// <summary>A lookup nobody will poll (the request finished, was matched anew, or the cache was reset).</summary>
    public void DropLookup(RequestState s)
    {
        if (s.RemoteLookup is { Probe: true } && LookupTier() is >= 0 and var t) _tiers[t].Lookups!.Breaker.Abandoned();
        s.RemoteLookup = null;
    }
}
