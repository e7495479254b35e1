"""Which bytes of a vLLM KV-cache tensor belong to block b, decided from shape AND strides.

A layer is described to the engine as base + block stride (+ K/V stride) + span length: the
span is the block's region (of K or V, or of both when packed) and must be one dense run of
memory, in any internal order (NHD or HND), because blocks move as opaque bytes and are
restored into the same layout. Supported (what vLLM's attention backends hand to
``register_kv_caches``): FlashAttention 5-D with the K/V axis first
``(2, N, bs, H, D)`` or second ``(N, 2, bs, H, D)``, the CPU backend's ``(2, N, H, bs, D)``,
packed 4-D ``(N, H, bs, 2D)``, MLA 3-D ``(N, bs, D)`` and the old CPU 3-D ``(2, N, bs*H*D)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from ..._errors import InvalidArgumentError, NotSupportedError
from ...manager import KVLayer


def _axes(shape: Sequence[int], num_blocks: Optional[int], block_size: int) -> Optional[Tuple[int, Optional[int]]]:
    """(block axis, K/V axis or None) for a known layout, else None."""
    nd = len(shape)

    def is_n(x):
        return num_blocks is None or x == num_blocks

    if nd == 5:
        kv_first = shape[0] == 2 and is_n(shape[1])
        blocks_first = shape[1] == 2 and is_n(shape[0])
        if kv_first and blocks_first and num_blocks is None:
            return None  # (2, 2, ...) cannot be told apart without the block count
        if kv_first:
            return 1, 0
        if blocks_first:
            return 0, 1
        return None
    if nd == 4:
        return (0, None) if is_n(shape[0]) and block_size in shape[1:] else None
    if nd == 3:
        if shape[0] == 2 and is_n(shape[1]) and shape[2] % block_size == 0 and shape[2] != block_size:
            return 1, 0  # CPU TORCH_SDPA: (2, N, bs*H*D)
        if is_n(shape[0]) and shape[1] == block_size:
            return 0, None  # MLA
        return None
    return None


def _dense(sizes: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether dims with these sizes/strides cover one contiguous run (in any dim order)."""
    expect = 1
    for size, stride in sorted(zip(sizes, strides), key=lambda p: p[1]):
        if size == 1:
            continue
        if stride != expect:
            return False
        expect *= size
    return True


def device_of(tensor) -> Optional[int]:
    """None for host memory, the CUDA ordinal for a CUDA tensor; other devices are refused."""
    dev = getattr(tensor, "device", None)
    kind = getattr(dev, "type", "cpu")
    if kind == "cpu":
        return None
    if kind == "cuda":
        index = getattr(dev, "index", None)
        return int(index) if index is not None else 0
    raise NotSupportedError(f"KV cache tensors on '{kind}' are not supported: FlexKv copies host memory and CUDA memory")


def describe(tensor, block_size: int, num_blocks: Optional[int] = None) -> Tuple[KVLayer, int]:
    """The engine's description of one layer's cache tensor and its number of blocks.

    Raises :class:`InvalidArgumentError` naming the shape and strides for an unknown layout.
    """
    shape, strides = tuple(tensor.shape), tuple(tensor.stride())
    axes = _axes(shape, num_blocks, block_size)
    if axes is None:
        raise InvalidArgumentError(
            f"unsupported KV cache layout: shape {shape}, strides {strides} (block_size {block_size}, "
            f"num_blocks {num_blocks}); supported: (2,N,bs,H,D), (N,2,bs,H,D), (2,N,H,bs,D), (N,H,bs,2D), (N,bs,D)")
    block_axis, kv_axis = axes
    rest = [i for i in range(len(shape)) if i not in (block_axis, kv_axis)]
    if not _dense([shape[i] for i in rest], [strides[i] for i in rest]):
        raise InvalidArgumentError(
            f"KV cache block of shape {shape} with strides {strides} is not one contiguous run of memory; "
            "FlexKv copies whole blocks and cannot address a scattered block")
    e = tensor.element_size()
    span = e
    for i in rest:
        span *= shape[i]
    layer = KVLayer(base=tensor.data_ptr(), block_stride=strides[block_axis] * e, span_bytes=span,
                    kv_stride=strides[kv_axis] * e if kv_axis is not None else 0,
                    num_kv=2 if kv_axis is not None else 1)
    if kv_axis is not None and abs(layer.kv_stride) < span:
        raise InvalidArgumentError(f"K and V of shape {shape} with strides {strides} overlap")
    return layer, shape[block_axis]
