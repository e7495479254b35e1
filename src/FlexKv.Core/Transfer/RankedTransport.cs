namespace FlexKv.Core.Transfer;

/// <summary>
/// A KV cache split over tensor-parallel ranks (each worker holds some heads of every layer):
/// one CPU slot holds the block of every rank, rank 0's bytes first. Each rank's transport
/// copies its part; a block fails if any rank's part failed, so a load is all-or-nothing.
/// The engine owns the rank transports (a restarted rank replaces one while others stay).
/// </summary>
public sealed unsafe class RankedTransport : IDeviceTransport
{
    private readonly IDeviceTransport[] _ranks;
    private readonly long[] _offsets;

    /// <summary>Combines the per-rank transports (index = rank); all must address the same block count.</summary>
    public RankedTransport(IDeviceTransport[] ranks)
    {
        if (ranks.Length == 0) throw new ArgumentException("at least one rank is needed", nameof(ranks));
        _ranks = ranks;
        _offsets = new long[ranks.Length];
        long total = 0;
        var layers = new List<KvLayerDesc>();
        for (int r = 0; r < ranks.Length; r++)
        {
            if (ranks[r].Layout.NumDeviceBlocks != ranks[0].Layout.NumDeviceBlocks)
                throw new Errors.FlexKvException(Errors.FlexKvStatus.InvalidArgument,
                    $"rank {r} has {ranks[r].Layout.NumDeviceBlocks} blocks, rank 0 {ranks[0].Layout.NumDeviceBlocks}");
            _offsets[r] = total;
            total += ranks[r].Layout.BlockBytes;
            layers.AddRange(ranks[r].Layout.Layers);
        }
        Layout = KvLayout.Create(layers.ToArray(), ranks[0].Layout.NumDeviceBlocks, total);
    }

    /// <inheritdoc />
    public KvLayout Layout { get; }

    /// <inheritdoc />
    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        Span<byte> rankFailed = stackalloc byte[deviceBlocks.Length];
        for (int r = 0; r < _ranks.Length; r++)
        {
            failed.CopyTo(rankFailed); // blocks already failed are skipped by every rank
            _ranks[r].Copy(direction, deviceBlocks, cpuSlots, hostBase + _offsets[r], hostStride, rankFailed);
            for (int i = 0; i < failed.Length; i++) failed[i] |= rankFailed[i];
        }
        int failures = 0;
        foreach (byte f in failed) if (f != 0) failures++;
        return failures;
    }
}
