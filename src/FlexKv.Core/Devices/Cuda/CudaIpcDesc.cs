using System.Runtime.InteropServices;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>
/// What a worker sends so another process can reach one of its KV cache tensors (mirrors
/// <c>flexkv_cuda_ipc_t</c>): the IPC handle of the allocation holding it, the tensor's offset in
/// that allocation, and the PCI bus id of its GPU (ordinals differ between processes when
/// CUDA_VISIBLE_DEVICES does; the bus id does not).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CudaIpcDesc
{
    /// <summary>Bytes of the NUL-terminated bus id, e.g. "0000:3b:00.0".</summary>
    public const int BusIdBytes = 32;

    /// <summary>cuIpcGetMemHandle of the allocation's base.</summary>
    public CudaIpcMemHandle Handle;
    /// <summary>Bytes from the allocation's base to the tensor.</summary>
    public ulong Offset;
    /// <summary>The GPU's PCI bus id, NUL-terminated ASCII.</summary>
    public BusId PciBusId;

    /// <summary>Fixed storage for <see cref="PciBusId"/>.</summary>
    [System.Runtime.CompilerServices.InlineArray(BusIdBytes)]
    public struct BusId
    {
        private byte _first;
    }
}
