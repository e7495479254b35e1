using FlexKv.Core.Transfer;
namespace FlexKv.Core.Devices;

/// <summary>
/// A KV cache split over tensor-parallel ranks (each worker holds some heads of every layer):
/// one CPU slot holds the block of every rank, rank 0's bytes first. Each rank's transport
/// copies its part; a block fails if any rank's part failed, so a load is all-or-nothing.
/// The engine owns the rank transports (a restarted rank replaces one while others stay).
/// </summary>
internal sealed unsafe class RankedTransport : IDeviceTransport
{
    private readonly IDeviceTransport[] _ranks;
    private readonly long[] _offsets;
    private readonly ThreadLocal<byte[]> _scratch = new(() => new byte[256]); // per copy thread: each rank's failed flags

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
        int n = deviceBlocks.Length;
        byte[] scratch = _scratch.Value!;
        if (scratch.Length < _ranks.Length * n) _scratch.Value = scratch = new byte[_ranks.Length * n * 2]; // grows once to the largest batch
        Span<int> submitted = stackalloc int[_ranks.Length];
        Span<bool> queued = stackalloc bool[_ranks.Length];
        // Asynchronous ranks (GPUs) are all queued before any is waited for, so their links copy
        // at once. Every queued rank is waited for, whatever happens to the others: a slot must
        // not be reused while a copy into or out of it may still run.
        for (int r = 0; r < _ranks.Length; r++)
        {
            Span<byte> rankFailed = scratch.AsSpan(r * n, n);
            failed.CopyTo(rankFailed); // blocks already failed are skipped by every rank
            try
            {
                if (_ranks[r] is IAsyncDeviceTransport a)
                {
                    submitted[r] = a.Submit(direction, deviceBlocks, cpuSlots, hostBase + _offsets[r], hostStride, rankFailed);
                    queued[r] = true;
                }
                else
                {
                    _ranks[r].Copy(direction, deviceBlocks, cpuSlots, hostBase + _offsets[r], hostStride, rankFailed);
                }
            }
            catch (Exception)
            {
                rankFailed.Fill((byte)BlockFailure.CopyFailed); // this rank's part is lost (its queued copies, if any, are waited for below)
                queued[r] = _ranks[r] is IAsyncDeviceTransport;
            }
        }
        for (int r = 0; r < _ranks.Length; r++)
        {
            Span<byte> rankFailed = scratch.AsSpan(r * n, n);
            if (queued[r])
            {
                try
                {
                    ((IAsyncDeviceTransport)_ranks[r]).Complete(direction, rankFailed, submitted[r]);
                }
                catch (Exception)
                {
                    rankFailed.Fill((byte)BlockFailure.CopyFailed);
                }
            }
            for (int i = 0; i < n; i++) failed[i] |= rankFailed[i];
        }
        int failures = 0;
        foreach (byte f in failed) if (f != 0) failures++;
        return failures;
    }
}
