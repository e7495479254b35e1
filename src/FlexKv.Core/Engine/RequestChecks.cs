using FlexKv.Core.Errors;

namespace FlexKv.Core.Engine;

/// <summary>
/// The argument and state checks of vLLM's calls, each an InvalidArgument or InvalidState error
/// that names the request and the value: made before a call changes anything, so a rejected
/// call leaves the engine as it was.
/// </summary>
internal static class RequestChecks
{
    /// <summary>A request id and its token buffer: the buffer is empty (the engine has them) or holds exactly <paramref name="numTokens"/>.</summary>
    public static void Tokens(ReadOnlySpan<char> requestId, ReadOnlySpan<long> tokens, int numTokens)
    {
        if (requestId.IsEmpty) ThrowHelper.Throw(FlexKvStatus.InvalidArgument, "request id is empty");
        if (numTokens < 0) ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"num_tokens must be >= 0, got {numTokens}");
        if (!tokens.IsEmpty && tokens.Length != numTokens)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"token buffer holds {tokens.Length} tokens but num_tokens is {numTokens}");
    }

    /// <summary>vLLM's own hit is whole blocks.</summary>
    public static void ComputedTokens(int numComputedTokens, int tokensPerBlock)
    {
        if (numComputedTokens < 0 || numComputedTokens % tokensPerBlock != 0)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                $"num_computed_tokens must be a non-negative multiple of tokens_per_block ({tokensPerBlock}), got {numComputedTokens}");
    }

    /// <summary>A request the engine knows and that has not finished.</summary>
    public static RequestState Running(RequestState? s, ReadOnlySpan<char> requestId)
    {
        if (s is null) ThrowHelper.UnknownRequest(requestId.ToString());
        if (s.Finished) ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' already finished");
        return s;
    }

    /// <summary>A tail of tokens starts where the request's full blocks end, and a request's tokens only grow.</summary>
    public static void Tail(RequestState s, ReadOnlySpan<char> requestId, int tailLength, int firstToken, int tokensPerBlock)
    {
        int boundary = s.Sequence.Blocks * tokensPerBlock;
        if (firstToken != boundary)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                $"request '{requestId}': its tokens must be extended from token {boundary} (where its full blocks end), not {firstToken}");
        if ((long)firstToken + tailLength > int.MaxValue)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"request '{requestId}': {firstToken} + {tailLength} tokens is too many");
        Grows(s, requestId, firstToken + tailLength);
    }

    /// <summary>A request's tokens only grow; none given means the engine must have them all.</summary>
    public static void Extension(RequestState s, ReadOnlySpan<char> requestId, ReadOnlySpan<long> tokens, int numTokens)
    {
        if (!tokens.IsEmpty) Grows(s, requestId, tokens.Length);
        else if (numTokens > s.Sequence.TokensSeen)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                $"request '{requestId}' grew from {s.Sequence.TokensSeen} to {numTokens} tokens: pass the token ids");
    }

    /// <summary>A load of <paramref name="numExternalTokens"/> fits what was matched and the block ids given.</summary>
    public static int LoadBlocks(RequestState s, ReadOnlySpan<char> requestId, int blockIds, int numExternalTokens, int tokensPerBlock)
    {
        if (s.GetPlanned) ThrowHelper.Throw(FlexKvStatus.InvalidState, $"request '{requestId}' already has a load planned");
        int blocks = (numExternalTokens + tokensPerBlock - 1) / tokensPerBlock;
        if (blocks > s.PinnedCount)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                $"request '{requestId}': {numExternalTokens} external tokens requested but only {s.PinnedCount * tokensPerBlock} were matched");
        if (blockIds < s.ComputedBlocks + blocks)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument, $"request '{requestId}': {blockIds} block ids given, {s.ComputedBlocks + blocks} needed");
        return blocks;
    }

    private static void Grows(RequestState s, ReadOnlySpan<char> requestId, int now)
    {
        if (now < s.Sequence.TokensSeen)
            ThrowHelper.Throw(FlexKvStatus.InvalidArgument,
                $"request '{requestId}' had {s.Sequence.TokensSeen} tokens and now has {now}: a request's tokens may only grow");
    }
}
