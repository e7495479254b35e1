using System.Runtime.InteropServices;
using System.Text.Json;
using FlexKv.Core.Planning;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>The tiered capacity planner (control plane of CPU and SSD tiers, no bytes). Marshalling only.</summary>
internal static unsafe class PlanExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_plan_create")]
    public static int Create(int tokensPerBlock, long cpuBlocks, long ssdBlocks, ulong* planner)
    {
        try
        {
            Args.NotNull(planner, "planner");
            *planner = 0;
            *planner = HandleTable.Add(new TierPlanner(tokensPerBlock, cpuBlocks, ssdBlocks));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_plan_destroy")]
    public static int Destroy(ulong planner)
    {
        try
        {
            if (planner != 0) HandleTable.Remove<TierPlanner>(planner);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_plan_replay")]
    public static int Replay(ulong planner, long* tokens, nuint numTokens, long* promptLengths, long* totalLengths,
        nuint numSequences, int* cpuBlocks, int* ssdBlocks, int* notLoaded)
    {
        try
        {
            TierPlanner p = HandleTable.Get<TierPlanner>(planner);
            var prompt = Args.Span(promptLengths, numSequences, "prompt_lengths");
            int n = prompt.Length;
            p.Replay(Args.Span(tokens, numTokens, "tokens"), prompt, Args.Span(totalLengths, numSequences, "total_lengths"),
                cpuBlocks == null ? default : new Span<int>(cpuBlocks, n), ssdBlocks == null ? default : new Span<int>(ssdBlocks, n),
                notLoaded == null ? default : new Span<int>(notLoaded, n));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [ThreadStatic] private static MooncakeReplay? t_mooncake; // its token buffer, reused by this thread's calls

    [UnmanagedCallersOnly(EntryPoint = "flexkv_plan_replay_mooncake")]
    public static int ReplayMooncake(ulong planner, long* hashIds, nuint numHashIds, long* hashCounts, long* inputLengths,
        long* outputLengths, nuint numRequests, int blockTokens, long firstOutputId, int* cpuBlocks, int* ssdBlocks, int* notLoaded)
    {
        try
        {
            TierPlanner p = HandleTable.Get<TierPlanner>(planner);
            var counts = Args.Span(hashCounts, numRequests, "hash_counts");
            int n = counts.Length;
            (t_mooncake ??= new MooncakeReplay()).Replay(p, Args.Span(hashIds, numHashIds, "hash_ids"), counts,
                Args.Span(inputLengths, numRequests, "input_lengths"), Args.Span(outputLengths, numRequests, "output_lengths"),
                blockTokens, firstOutputId,
                cpuBlocks == null ? default : new Span<int>(cpuBlocks, n), ssdBlocks == null ? default : new Span<int>(ssdBlocks, n),
                notLoaded == null ? default : new Span<int>(notLoaded, n));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_plan_stats")]
    public static int Stats(ulong planner, byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            return Args.WriteText(StatsJson(HandleTable.Get<TierPlanner>(planner)), buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    private static byte[] StatsJson(TierPlanner p)
    {
        PlanTotals t = p.Totals;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("tokens_per_block", p.TokensPerBlock);
            w.WriteNumber("requests", t.Requests);
            w.WriteNumber("prompt_tokens", t.PromptTokens);
            w.WriteNumber("total_tokens", t.TotalTokens);
            w.WriteNumber("queried_blocks", t.QueriedBlocks);
            w.WriteNumber("cpu_hit_blocks", t.CpuHitBlocks);
            w.WriteNumber("ssd_hit_blocks", t.SsdHitBlocks);
            w.WriteNumber("failed_load_blocks", t.FailedLoadBlocks);
            w.WriteNumber("staging_cut_blocks", t.StagingCutBlocks);
            w.WriteNumber("saved_blocks", t.SavedBlocks);
            w.WriteNumber("dropped_blocks", t.DroppedBlocks);
            w.WriteNumber("ssd_written_blocks", t.SsdWrittenBlocks);
            w.WriteNumber("cpu_blocks_used", p.Index.UsedSlots);
            w.WriteNumber("cpu_blocks_total", p.Index.Capacity);
            w.WriteNumber("ssd_blocks_used", p.SsdUsedSlots);
            w.WriteNumber("ssd_blocks_total", p.SsdCapacity);
            w.WriteNumber("cpu_evictions", p.Index.Evictions);
            w.WriteNumber("ssd_evictions", p.SsdEvictions);
            w.WriteNumber("index_blocks", p.Index.Count);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
