using System.Runtime.InteropServices;
using FlexKv.Core.Errors;
using FlexKv.Core.Index;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>The control-plane-only prefix index (trace replay, capacity planning). Marshalling only.</summary>
internal static unsafe class IndexExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_create")]
    public static int Create(int tokensPerBlock, long capacityBlocks, ulong* index)
    {
        try
        {
            Args.NotNull(index, "index");
            *index = 0;
            if (capacityBlocks is < 1 or > int.MaxValue)
                throw new FlexKvException(FlexKvStatus.InvalidArgument, $"capacity_blocks must be in 1..{int.MaxValue}, got {capacityBlocks}");
            *index = HandleTable.Add(new PrefixCache(tokensPerBlock, (int)capacityBlocks));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_destroy")]
    public static int Destroy(ulong index)
    {
        try
        {
            if (index != 0) HandleTable.Remove<PrefixCache>(index);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_match")]
    public static int Match(ulong index, long sequence, long* tokens, nuint numTokens, int* matchedTokens)
    {
        try
        {
            Args.NotNull(matchedTokens, "matched_tokens");
            *matchedTokens = HandleTable.Get<PrefixCache>(index).Match(sequence, Args.Span(tokens, numTokens, "tokens"));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_insert")]
    public static int Insert(ulong index, long sequence, long* tokens, nuint numTokens, int* storedBlocks)
    {
        try
        {
            Args.NotNull(storedBlocks, "stored_blocks");
            *storedBlocks = HandleTable.Get<PrefixCache>(index).Insert(sequence, Args.Span(tokens, numTokens, "tokens"));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_info")]
    public static int Info(ulong index, long* blocks, long* evictions)
    {
        try
        {
            Args.NotNull(blocks, "blocks");
            Args.NotNull(evictions, "evictions");
            PrefixCache c = HandleTable.Get<PrefixCache>(index);
            *blocks = c.Index.Count;
            *evictions = c.Index.Evictions;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_index_replay")]
    public static int Replay(ulong index, long* tokens, nuint numTokens, long* promptLengths, long* totalLengths,
        nuint numSequences, int* matchedTokens, long* totalMatched)
    {
        try
        {
            Args.NotNull(totalMatched, "total_matched");
            Args.NotNull(matchedTokens, "matched_tokens");
            PrefixCache c = HandleTable.Get<PrefixCache>(index);
            var matched = new Span<int>(matchedTokens, (int)Math.Min(numSequences, int.MaxValue));
            *totalMatched = c.Replay(Args.Span(tokens, numTokens, "tokens"), Args.Span(promptLengths, numSequences, "prompt_lengths"),
                Args.Span(totalLengths, numSequences, "total_lengths"), matched);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }
}
