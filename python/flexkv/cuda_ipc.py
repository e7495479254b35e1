"""CUDA KV cache tensors of a worker process, described so the engine's process can map them.

A vLLM worker with tensor parallelism owns its GPU's KV cache; the engine runs in the
scheduler's process. The worker exports, per tensor, the CUDA IPC handle of the allocation
holding it, the tensor's offset in it and the GPU's PCI bus id, and sends them over the
registration socket; the engine maps them (``KVManager.register_rank(..., cuda_ipc=...)``).
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple, Sequence

from . import _native


class CudaIpcHandle(NamedTuple):
    handle: bytes      # 64 bytes from cuIpcGetMemHandle of the allocation's base
    offset: int        # the tensor's offset in that allocation
    pci_bus_id: str    # e.g. "0000:3b:00.0"

    def to_json(self) -> list:
        return [self.handle.hex(), self.offset, self.pci_bus_id]

    @classmethod
    def from_json(cls, v) -> "CudaIpcHandle":
        return cls(bytes.fromhex(v[0]), int(v[1]), str(v[2]))


def export(device_ptr: int) -> CudaIpcHandle:
    """Describes a device pointer of this process. Raises NotSupportedError without a driver or
    for memory CUDA IPC cannot share (expandable segments, sleep mode: the message says which)."""
    out = _native.CudaIpc()
    _native.check(_native.lib().flexkv_cuda_ipc_export(device_ptr, ctypes.byref(out)))
    return CudaIpcHandle(bytes(out.handle), out.offset, out.pci_bus_id.decode())


def to_native(handles: Sequence[CudaIpcHandle]):
    arr = (_native.CudaIpc * len(handles))()
    for i, h in enumerate(handles):
        if len(h.handle) != 64:
            raise ValueError(f"CUDA IPC handle {i} has {len(h.handle)} bytes, expected 64")
        arr[i].handle[:] = list(h.handle)
        arr[i].offset = h.offset
        arr[i].pci_bus_id = h.pci_bus_id.encode()[:31]
    return arr
