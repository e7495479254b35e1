using System.Runtime.CompilerServices;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Devices.Cuda;

/// <summary>The driver's CUipcMemHandle: 64 opaque bytes naming a device allocation to other processes.</summary>
[InlineArray(Size)]
internal struct CudaIpcMemHandle
{
    /// <summary>Bytes in a handle.</summary>
    public const int Size = 64;

    private byte _first;
}
