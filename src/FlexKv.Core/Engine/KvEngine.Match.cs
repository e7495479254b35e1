using FlexKv.Core.Errors;
using FlexKv.Core.Tiers;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Engine;

internal sealed partial class KvEngine
{
    /// <summary>
    /// vLLM's <c>get_num_new_matched_tokens</c>: how many tokens beyond
    /// <paramref name="numComputedTokens"/> (vLLM's own hit, block-aligned) can be loaded now.
    /// Only full blocks of the first <paramref name="numTokens"/> tokens count. The matched blocks
    /// are pinned until the request's load ends; asking again replaces the previous answer and its
    /// pins. <paramref name="tokens"/> may be empty when the engine already saw at least
    /// <paramref name="numTokens"/> tokens of this request (no re-hashing, no re-sending).
    /// Returns <see cref="TierSet.MatchPending"/> (-1) while the remote store is being asked about the
    /// blocks after the local hit: the caller asks again later (vLLM: the lookup returns None and
    /// the request is retried next step); the local blocks stay pinned meanwhile.
    /// </summary>
    public int GetNumNewMatchedTokens(ReadOnlySpan<char> requestId, ReadOnlySpan<long> tokens, int numTokens,
        int numComputedTokens, ReadOnlySpan<byte> utf8Namespace = default)
    {
        RequestChecks.Tokens(requestId, tokens, numTokens);
        RequestChecks.ComputedTokens(numComputedTokens, TokensPerBlock);
        lock (_sync)
        {
            ThrowIfShutDown();
            ApplyCompletions();
            RequestState? s = _requests.Find(requestId);
            if (s is null)
            {
                if (tokens.IsEmpty && numTokens > 0)
                    ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"request '{requestId}' is new: its token ids are required");
                s = _requests.Add(requestId, _hasher.SeedFor(utf8Namespace));
            }
            else if (s.Finished)
                ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' already finished");
            else if (s.Get is not null)
                ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' has a load in flight; it cannot be matched again until the load ends");

            Extend(s, requestId, tokens, numTokens);

            s.GetPlanned = false;
            _stats.MatchCalls++;
            int blocks = numTokens / TokensPerBlock;
            int computedBlocks = numComputedTokens / TokensPerBlock;
            _stats.QueriedTokens += (long)blocks * TokensPerBlock;
            // Without a registered cache nothing can be loaded, so nothing is offered.
            if (_transfer.Transport is null || blocks <= computedBlocks || _clearPending)
            {
                _planner.ReleaseMatch(s);
                s.NumComputedTokens = numComputedTokens;
                s.ComputedBlocks = computedBlocks;
                _offers.Record(s, blocks, computedBlocks, 0,
                    _transfer.Transport is null ? Metrics.NotOfferedReason.NotRegistered : Metrics.NotOfferedReason.Resetting);
                return 0;
            }
            int matchedBlocks = _planner.Match(s, blocks, computedBlocks, _options.RemoteLookupBudgetMs);
            s.NumComputedTokens = numComputedTokens;
            if (matchedBlocks == TierSet.MatchPending)
            {
                _stats.MatchCalls--; // the answer comes with a later call; count the lookup once
                _stats.QueriedTokens -= (long)blocks * TokensPerBlock;
                return TierSet.MatchPending;
            }
            int newTokens = matchedBlocks * TokensPerBlock;
            _stats.MatchedTokens += newTokens;
            _offers.Record(s, blocks, computedBlocks, matchedBlocks, _planner.LastStop);
            return newTokens;
        }
    }

    /// <summary>
    /// Tells the engine a known request's newer tokens without sending its whole sequence again:
    /// <paramref name="tail"/> holds tokens [<paramref name="firstToken"/>, firstToken + tail.Length),
    /// where <paramref name="firstToken"/> is where the request's full blocks seen so far end
    /// (<c>tokens_seen / tokens_per_block * tokens_per_block</c>). A later match or finish may then
    /// pass no tokens.
    /// </summary>
    public void ExtendTokens(ReadOnlySpan<char> requestId, ReadOnlySpan<long> tail, int firstToken)
    {
        lock (_sync)
        {
            ThrowIfShutDown();
            RequestState s = RequestChecks.Running(_requests.Find(requestId), requestId);
            RequestChecks.Tail(s, requestId, tail.Length, firstToken, TokensPerBlock);
            s.Sequence.ExtendTail(_hasher, tail, firstToken);
        }
    }

    /// <summary>
    /// vLLM's <c>update_state_after_alloc</c>: <paramref name="blockIds"/> are the request's
    /// device blocks from block 0; the external tokens go to blocks
    /// [num_computed/bs, (num_computed + external)/bs). Plans the load. A call with 0 external
    /// tokens drops the match's pins, or is a no-op when a load is already planned (vLLM calls
    /// again after an async load finished).
    /// </summary>
    public void UpdateStateAfterAlloc(ReadOnlySpan<char> requestId, ReadOnlySpan<int> blockIds, int numExternalTokens)
    {
        if (numExternalTokens < 0) ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"num_external_tokens must be >= 0, got {numExternalTokens}");
        lock (_sync)
        {
            ThrowIfShutDown();
            RequestState s = RequestChecks.Running(_requests.Find(requestId), requestId);
            if (numExternalTokens == 0)
            {
                if (!s.GetPlanned) _planner.ReleaseMatch(s);
                return;
            }
            int blocks = RequestChecks.LoadBlocks(s, requestId, blockIds.Length, numExternalTokens, TokensPerBlock);
            ReadOnlySpan<int> dst = blockIds.Slice(s.ComputedBlocks, blocks);
            KvLayout? layout = _transfer.Transport?.Layout;
            if (layout is null) ThrowHelper.Throw(FlexKvStatus.NotRegistered, "no KV cache is registered");
            layout.CheckBlockIds(dst);

            TransferTask task = _planner.PlanLoad(s, dst);
            s.Get = task;
            s.GetPlanned = true;
            _planned.Add(task);
        }
    }

    // A request's tokens only grow: new ones are hashed; none given means the engine has them all.
    private void Extend(RequestState s, ReadOnlySpan<char> requestId, ReadOnlySpan<long> tokens, int numTokens)
    {
        RequestChecks.Extension(s, requestId, tokens, numTokens);
        if (!tokens.IsEmpty) s.Sequence.Extend(_hasher, tokens);
    }
}
