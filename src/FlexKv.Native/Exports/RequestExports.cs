using System.Runtime.InteropServices;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>The per-request scheduler calls, named as vLLM names them. Marshalling only.</summary>
internal static unsafe class RequestExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_get_num_new_matched_tokens")]
    public static int GetNumNewMatchedTokens(ulong engine, byte* requestId, nuint requestIdLength, long* tokens, nuint numTokens,
        int numComputedTokens, byte* ns, nuint nsLength, int* matched)
    {
        try
        {
            Args.NotNull(matched, "matched");
            *matched = 0;
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            var id = Args.Decode(Args.Id(requestId, requestIdLength), chars);
            var toks = tokens == null ? default : Args.Span(tokens, numTokens, "tokens");
            *matched = e.GetNumNewMatchedTokens(id, toks, CheckedInt(numTokens, "num_tokens"), numComputedTokens, Args.Span(ns, nsLength, "namespace"));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_update_state_after_alloc")]
    public static int UpdateStateAfterAlloc(ulong engine, byte* requestId, nuint requestIdLength, int* blockIds, nuint numBlockIds,
        int numExternalTokens)
    {
        try
        {
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            var id = Args.Decode(Args.Id(requestId, requestIdLength), chars);
            e.UpdateStateAfterAlloc(id, Args.Span(blockIds, numBlockIds, "block_ids"), numExternalTokens);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_request_finished")]
    public static int RequestFinished(ulong engine, byte* requestId, nuint requestIdLength, long* tokens, nuint numTokens,
        int* blockIds, nuint numBlockIds, int save, byte* ns, nuint nsLength, int* hold)
    {
        try
        {
            Args.NotNull(hold, "hold");
            *hold = 0;
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            var id = Args.Decode(Args.Id(requestId, requestIdLength), chars);
            var toks = tokens == null ? default : Args.Span(tokens, numTokens, "tokens");
            *hold = e.RequestFinished(id, toks, CheckedInt(numTokens, "num_tokens"), Args.Span(blockIds, numBlockIds, "block_ids"),
                save != 0, Args.Span(ns, nsLength, "namespace")) ? 1 : 0;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_extend_tokens")]
    public static int ExtendTokens(ulong engine, byte* requestId, nuint requestIdLength, long* tokens, nuint numTokens, int firstToken)
    {
        try
        {
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            e.ExtendTokens(Args.Decode(Args.Id(requestId, requestIdLength), chars), Args.Span(tokens, numTokens, "tokens"), firstToken);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_cancel_request")]
    public static int CancelRequest(ulong engine, byte* requestId, nuint requestIdLength)
    {
        try
        {
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            e.CancelRequest(Args.Decode(Args.Id(requestId, requestIdLength), chars));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_launch_tasks")]
    public static int LaunchTasks(ulong engine, int* launched)
    {
        try
        {
            Args.NotNull(launched, "launched");
            *launched = HandleTable.Get<KvEngine>(engine).LaunchTasks();
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_query_finished_task")]
    public static int QueryFinishedTask(ulong engine, byte* entries, nuint entriesCapacity, nuint* entriesLength,
        int* failedBlocks, nuint failedCapacity, nuint* failedCount)
    {
        try
        {
            Args.NotNull(entriesLength, "entries_length");
            Args.NotNull(failedCount, "failed_count");
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            bool ok = e.QueryFinished(Args.Out(entries, entriesCapacity, "entries"), Args.Out(failedBlocks, failedCapacity, "failed_blocks"),
                out int bytes, out int failed);
            *entriesLength = (nuint)bytes;
            *failedCount = (nuint)failed;
            return ok ? 0 : LastError.Set(FlexKvStatus.BufferTooSmall,
                $"query_finished_task needs {bytes} entry bytes and {failed} failed-block slots; nothing was taken");
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    private static int CheckedInt(nuint n, string name) =>
        n <= int.MaxValue ? (int)n : throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{name} {n} is too large");
}
