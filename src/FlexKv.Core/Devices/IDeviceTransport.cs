using FlexKv.Core.Transfer;
namespace FlexKv.Core.Devices;

/// <summary>Direction of a block copy.</summary>
internal enum TransferDirection
{
    /// <summary>Registered KV cache → CPU slots (a put).</summary>
    DeviceToHost,
    /// <summary>CPU slots → registered KV cache (a get).</summary>
    HostToDevice,
}

/// <summary>
/// Moves whole blocks between the registered KV cache and CPU slots. The same-process host
/// path is <see cref="HostMemoryTransport"/>; the CUDA and cross-process paths implement this
/// too. Called from copy threads, concurrently, on disjoint blocks.
/// </summary>
internal unsafe interface IDeviceTransport
{
    /// <summary>The registered layout.</summary>
    KvLayout Layout { get; }

    /// <summary>
    /// Copies block <c>deviceBlocks[i]</c> to/from the host slot at
    /// <c>hostBase + cpuSlots[i] * hostStride</c>. Sets <c>failed[i]</c> to <see cref="BlockFailure.CopyFailed"/> for each block that
    /// could not be copied and returns how many failed; throwing fails the whole batch.
    /// </summary>
    int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed);
}

/// <summary>
/// A transport whose copies run asynchronously (CUDA streams): <see cref="Submit"/> queues a
/// batch and <see cref="Complete"/> waits for it, so a caller spanning several GPUs (tensor
/// parallel ranks) keeps every link busy at once instead of one after another.
/// </summary>
internal unsafe interface IAsyncDeviceTransport : IDeviceTransport
{
    /// <summary>
    /// Queues the batch on the calling thread's stream; marks and counts blocks that could not be
    /// queued. May throw only before anything is queued (callers then skip <see cref="Complete"/>'s wait safely).
    /// </summary>
    int Submit(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed);

    /// <summary>Waits for the calling thread's queued batch; on error fails every block of it. Returns the failures in all.</summary>
    int Complete(TransferDirection direction, Span<byte> failed, int submitFailures);
}
