namespace FlexKv.Core.Planning;

/// <summary>
/// What a <see cref="TierPlanner"/> replay counted, in blocks unless named otherwise. Matched
/// blocks are split by where the engine would load them from: the CPU tier, the SSD tier
/// (staged through a CPU slot), or nowhere (no CPU slot could be freed for the staging, so vLLM
/// recomputes them: the engine reports them as failed loads).
/// </summary>
internal sealed class PlanTotals
{
    /// <summary>Requests replayed.</summary>
    public long Requests { get; internal set; }

    /// <summary>Prompt tokens replayed (partial last blocks included).</summary>
    public long PromptTokens { get; internal set; }

    /// <summary>Prompt and output tokens replayed.</summary>
    public long TotalTokens { get; internal set; }

    /// <summary>Full prompt blocks asked about.</summary>
    public long QueriedBlocks { get; internal set; }

    /// <summary>Blocks loaded from the CPU tier.</summary>
    public long CpuHitBlocks { get; internal set; }

    /// <summary>Blocks read from the SSD tier into a CPU slot, then loaded.</summary>
    public long SsdHitBlocks { get; internal set; }

    /// <summary>Matched blocks that no CPU slot could be freed for (vLLM recomputes them).</summary>
    public long FailedLoadBlocks { get; internal set; }

    /// <summary>Matched blocks not offered because staging them would need more CPU slots than can be freed.</summary>
    public long StagingCutBlocks { get; internal set; }

    /// <summary>Blocks written to the CPU tier by saves (GPU to CPU).</summary>
    public long SavedBlocks { get; internal set; }

    /// <summary>Blocks a save could not place (every CPU slot pinned or not evictable).</summary>
    public long DroppedBlocks { get; internal set; }

    /// <summary>Blocks written through to the SSD tier.</summary>
    public long SsdWrittenBlocks { get; internal set; }
}
