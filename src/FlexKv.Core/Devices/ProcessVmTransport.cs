using System.Runtime.InteropServices;
using FlexKv.Core.Errors;
using FlexKv.Core.Memory;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices;

/// <summary>
/// Host memory of another process (a vLLM worker on the CPU backend with TP &gt; 1, children of the
/// engine process): each block moves with one process_vm_readv (save) or process_vm_writev (load)
/// whose local side is the block's contiguous CPU slot and whose remote side lists the block's
/// spans in the worker. A worker that exited fails only the blocks being copied.
/// </summary>
internal sealed unsafe class ProcessVmTransport : IDeviceTransport
{
    private const int MaxIov = 1024; // IOV_MAX

    /// <summary>Checks access to <paramref name="pid"/> with a 1-byte read of its first span.</summary>
    public ProcessVmTransport(int pid, KvLayout layout)
    {
        if (pid <= 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"pid must be > 0, got {pid}");
        int spans = 0;
        foreach (var l in layout.Layers) spans += l.NumKv;
        if (spans > MaxIov)
            throw new FlexKvException(FlexKvStatus.NotSupported, $"{spans} spans per block exceed IOV_MAX ({MaxIov})");
        Pid = pid;
        Layout = layout;
        byte probe;
        var local = new LibcMethods.Iovec { Base = &probe, Length = 1 };
        var remote = new LibcMethods.Iovec { Base = (void*)layout.Layers[0].Base, Length = 1 };
        if (LibcMethods.ProcessVmReadv(pid, &local, 1, &remote, 1, 0) != 1)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                LibcMethods.Eperm => new FlexKvException(FlexKvStatus.NotSupported,
                    $"the kernel denies reading process {pid}'s memory (EPERM): the engine must be the workers' parent " +
                    "or ancestor, or allow it with `sysctl kernel.yama.ptrace_scope=0` (or CAP_SYS_PTRACE)"),
                LibcMethods.Esrch => new FlexKvException(FlexKvStatus.InvalidArgument, $"process {pid} does not exist"),
                _ => new FlexKvException(FlexKvStatus.InvalidArgument,
                    $"cannot read the KV cache of process {pid} at 0x{layout.Layers[0].Base:x} (errno {errno})"),
            };
        }
    }

    /// <summary>The worker process.</summary>
    public int Pid { get; }

    /// <inheritdoc />
    public KvLayout Layout { get; }

    /// <inheritdoc />
    public int Copy(TransferDirection direction, ReadOnlySpan<int> deviceBlocks, ReadOnlySpan<int> cpuSlots,
        byte* hostBase, long hostStride, Span<byte> failed)
    {
        KvLayerDesc[] layers = Layout.Layers;
        int spansPerBlock = 0;
        foreach (var l in layers) spansPerBlock += l.NumKv;
        int perCall = Math.Max(1, MaxIov / spansPerBlock); // several blocks per system call
        LibcMethods.Iovec* remote = stackalloc LibcMethods.Iovec[MaxIov];
        LibcMethods.Iovec* local = stackalloc LibcMethods.Iovec[MaxIov];
        Span<int> batch = stackalloc int[Math.Min(perCall, MaxIov)];
        int failures = 0;
        int i = 0;
        while (i < deviceBlocks.Length)
        {
            int n = 0, r = 0;
            for (; i < deviceBlocks.Length && n < batch.Length; i++)
            {
                int b = deviceBlocks[i];
                if (failed[i] != 0) continue;
                if ((uint)b >= (uint)Layout.NumDeviceBlocks) { failed[i] = (byte)BlockFailure.CopyFailed; failures++; continue; }
                foreach (ref readonly KvLayerDesc d in layers.AsSpan())
                {
                    ulong dev = d.Base + (ulong)(b * d.BlockStride);
                    for (int kv = 0; kv < d.NumKv; kv++, dev += (ulong)d.KvStride)
                        remote[r++] = new LibcMethods.Iovec { Base = (void*)dev, Length = (nuint)d.SpanBytes };
                }
                local[n] = new LibcMethods.Iovec { Base = hostBase + cpuSlots[i] * hostStride, Length = (nuint)Layout.BlockBytes };
                batch[n++] = i;
            }
            if (n == 0) continue;
            nint done = direction == TransferDirection.DeviceToHost
                ? LibcMethods.ProcessVmReadv(Pid, local, (nuint)n, remote, (nuint)r, 0)
                : LibcMethods.ProcessVmWritev(Pid, local, (nuint)n, remote, (nuint)r, 0);
            // A partial transfer (the worker died, or memory went away) completes whole blocks first.
            long whole = done < 0 ? 0 : done / Layout.BlockBytes;
            for (int k = (int)whole; k < n; k++) { failed[batch[k]] = (byte)BlockFailure.CopyFailed; failures++; }
        }
        return failures;
    }
}
