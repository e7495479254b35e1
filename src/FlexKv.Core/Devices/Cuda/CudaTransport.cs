using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// Copies blocks between a KV cache in GPU memory and the (page-locked) CPU pool with the
/// driver's asynchronous copies on a stream per copy thread (device→host and host→device on
/// separate streams): all spans of a batch in one batched copy where the driver has it, else
/// one copy per contiguous span; then an event recorded after the batch is waited for (a
/// blocking-sync event: the copy thread sleeps, it does not spin on a core). The
/// device pointers are this process's own, or another process's mapped through CUDA IPC
/// (an IPC mapping, closed with the transport).
/// </summary>
internal sealed unsafe class CudaTransport : IAsyncDeviceTransport, IDisposable
{
    private readonly CudaDevice _device;
    private readonly IDisposable? _mapping;
    private readonly ThreadLocal<Lane[]> _lanes; // per copy thread: [device→host, host→device]
    private readonly ThreadLocal<SpanList> _spans = new(() => new SpanList());
    private volatile bool _batchRefused; // turned off, or the driver refused a batched copy once: per-span copies from then on

    /// <summary>One direction of a copy thread: its stream (non-blocking) and the event marking a batch's end.</summary>
    private readonly record struct Lane(nint Stream, nint Done)
    {
        public static Lane Create()
        {
            CudaDevice.Check(CudaMethods.StreamCreate(out nint stream, 1), "cuStreamCreate");
            CudaDevice.Check(CudaMethods.EventCreate(out nint done, CudaMethods.EventBlockingNoTiming), "cuEventCreate");
            return new Lane(stream, done);
        }
    }

    /// <summary>A copy thread's reusable list of a batch's spans: destination, source, size, and the block each belongs to.</summary>
    private sealed class SpanList
    {
        public ulong[] Dst = new ulong[256], Src = new ulong[256];
        public nuint[] Size = new nuint[256];
        public int[] Owner = new int[256];
        public int Count;

        public void Add(ulong dst, ulong src, long bytes, int owner)
        {
            if (Count == Dst.Length)
            {
                Array.Resize(ref Dst, Count * 2); // grows to the largest batch once, then reused
                Array.Resize(ref Src, Count * 2);
                Array.Resize(ref Size, Count * 2);
                Array.Resize(ref Owner, Count * 2);
            }
            Dst[Count] = dst;
            Src[Count] = src;
            Size[Count] = (nuint)bytes;
            Owner[Count++] = owner;
        }
    }

    public CudaTransport(CudaDevice device, KvLayout layout, IDisposable? mapping = null, bool batchCopy = true)
    {
        _batchRefused = !batchCopy;
        _device = device;
        _mapping = mapping;
        Layout = layout;
        _lanes = new ThreadLocal<Lane[]>(() =>
        {
            _device.MakeCurrent();
            return [Lane.Create(), Lane.Create()];
        }, trackAllValues: true);
    }

    public KvLayout Layout { get; }

    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed) =>
        Complete(direction, failed, Submit(direction, deviceBlocks, cpuSlots, hostBase, hostStride, failed));

    public int Submit(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        // Tensor-parallel ranks sit on different GPUs and one copy thread serves them all, so the
        // thread's current context is set on every batch (a few hundred nanoseconds).
        _device.MakeCurrent();
        Lane lane = LaneFor(direction);
        SpanList spans = _spans.Value!;
        int failures = CollectSpans(direction, deviceBlocks, cpuSlots, hostBase, hostStride, failed, spans);
        if (!TryBatch(spans, lane.Stream))
            failures += CopySpans(direction, spans, failed, lane.Stream);
        if (CudaMethods.EventRecord(lane.Done, lane.Stream) != 0 && CudaMethods.StreamSynchronize(lane.Stream) != 0)
        {
            // Without a recorded event Complete's wait returns at once, so the stream is waited for
            // here; if even that fails, the batch's state is unknown and all of it has failed.
            failed.Fill((byte)BlockFailure.CopyFailed);
            return failed.Length;
        }
        return failures;
    }

    public int Complete(TransferDirection direction, Span<byte> failed, int submitFailures)
    {
        Lane lane = LaneFor(direction);
        if (CudaMethods.EventSynchronize(lane.Done) != 0)
        {
            // The batch's state is unknown: every block of it is failed (a load is recomputed).
            failed.Fill((byte)BlockFailure.CopyFailed);
            return failed.Length;
        }
        return submitFailures;
    }

    private Lane LaneFor(TransferDirection direction) => _lanes.Value![direction == TransferDirection.DeviceToHost ? 0 : 1];

    /// <summary>Lists the spans of every block still to copy; fails (and counts) ids outside the cache.</summary>
    private int CollectSpans(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed, SpanList spans)
    {
        spans.Count = 0;
        bool toHost = direction == TransferDirection.DeviceToHost;
        KvLayerDesc[] layers = Layout.Layers;
        int failures = 0;
        for (int i = 0; i < deviceBlocks.Length; i++)
        {
            int b = deviceBlocks[i];
            if (failed[i] != 0) continue;
            if ((uint)b >= (uint)Layout.NumDeviceBlocks) { failed[i] = (byte)BlockFailure.CopyFailed; failures++; continue; }
            ulong host = (ulong)(hostBase + cpuSlots[i] * hostStride);
            for (int l = 0; l < layers.Length; l++)
            {
                ref readonly KvLayerDesc d = ref layers[l];
                ulong dev = d.Base + (ulong)(b * d.BlockStride);
                for (int kv = 0; kv < d.NumKv; kv++, host += (ulong)d.SpanBytes, dev += (ulong)d.KvStride)
                    spans.Add(toHost ? host : dev, toHost ? dev : host, d.SpanBytes, i);
            }
        }
        return failures;
    }

    /// <summary>All spans in one cuMemcpyBatchAsync; false if the driver lacks it, it is turned off, or the driver refused it (nothing was copied then).</summary>
    private bool TryBatch(SpanList spans, nint stream)
    {
        if (!CudaBatchCopy.Available || _batchRefused) return false;
        if (spans.Count == 0) return true;
        int rc;
        fixed (ulong* dst = spans.Dst, src = spans.Src)
        fixed (nuint* size = spans.Size)
            rc = CudaBatchCopy.Submit(dst, src, size, spans.Count, stream);
        if (rc == 0) return true;
        _batchRefused = true;
        return false;
    }

    /// <summary>One asynchronous copy per span; a span the driver refuses fails its block.</summary>
    private static int CopySpans(TransferDirection direction, SpanList spans, Span<byte> failed, nint stream)
    {
        int failures = 0;
        for (int k = 0; k < spans.Count; k++)
        {
            int rc = direction == TransferDirection.DeviceToHost
                ? CudaMethods.MemcpyDtoHAsync((void*)spans.Dst[k], spans.Src[k], spans.Size[k], stream)
                : CudaMethods.MemcpyHtoDAsync(spans.Dst[k], (void*)spans.Src[k], spans.Size[k], stream);
            int owner = spans.Owner[k];
            if (rc != 0 && failed[owner] == 0) { failed[owner] = (byte)BlockFailure.CopyFailed; failures++; }
        }
        return failures;
    }

    public void Dispose()
    {
        using (_device.Enter()) // often the scheduler's thread: its current context is restored after
            foreach (Lane[] lanes in _lanes.Values)
                foreach (Lane lane in lanes)
                {
                    CudaMethods.EventDestroy(lane.Done);
                    CudaMethods.StreamDestroy(lane.Stream);
                }
        _lanes.Dispose();
        _spans.Dispose();
        _mapping?.Dispose();
        _device.Dispose();
    }
}
