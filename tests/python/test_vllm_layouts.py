"""KV cache layouts are recognised from shape and strides; anything else is refused by name."""

from __future__ import annotations

import pytest
import torch

import flexkv
from flexkv.integration.vllm import _layouts

N, BS, H, D = 6, 16, 2, 8


def region(t, block_axis, kv_axis, b, kv):
    idx = [slice(None)] * t.dim()
    idx[block_axis] = b
    if kv_axis is not None:
        idx[kv_axis] = kv
    return t[tuple(idx)]


@pytest.mark.parametrize("shape, axes", [
    ((2, N, BS, H, D), (1, 0)),          # FlashAttention, K/V axis first
    ((N, 2, BS, H, D), (0, 1)),          # FlashAttention, blocks first
    ((2, N, H, BS, D), (1, 0)),          # CPU_ATTN: heads before tokens
    ((N, H, BS, 2 * D), (0, None)),      # packed K|V in the last dim
    ((N, BS, 576), (0, None)),           # MLA latent
    ((2, N, BS * H * D), (1, 0)),        # old CPU TORCH_SDPA 3-D
])
def test_layer_description_addresses_exactly_each_blocks_bytes(shape, axes):
    t = torch.arange(int(torch.tensor(shape).prod()), dtype=torch.int32).reshape(shape).to(torch.float16)
    layer, n = _layouts.describe(t, BS, N)
    assert n == N
    block_axis, kv_axis = axes
    e = t.element_size()
    for b in range(N):
        for kv in range(layer.num_kv):
            r = region(t, block_axis, kv_axis, b, kv)
            addr = layer.base + b * layer.block_stride + kv * layer.kv_stride
            assert r.data_ptr() == addr and r.numel() * e == layer.span_bytes
    assert layer.span_bytes * layer.num_kv * N == t.numel() * e


def test_hnd_physical_order_is_accepted_as_opaque_blocks():
    phys = torch.zeros(2, N, H, BS, D, dtype=torch.float16)
    logical = phys.permute(0, 1, 3, 2, 4)  # logical NHD, physical HND
    layer, n = _layouts.describe(logical, BS, N)
    assert n == N and layer.span_bytes == BS * H * D * 2 and layer.num_kv == 2


def test_scattered_block_is_refused_with_shape_and_strides():
    t = torch.zeros(N, 2, BS, H, 2 * D, dtype=torch.float16)[..., :D]  # every row has a gap
    with pytest.raises(flexkv.InvalidArgumentError, match=r"strides"):
        _layouts.describe(t, BS, N)


def test_unknown_layout_is_refused_with_shape_and_strides():
    with pytest.raises(flexkv.InvalidArgumentError, match=r"shape \(3, 5, 7, 9\)"):
        _layouts.describe(torch.zeros(3, 5, 7, 9), BS, N)
    with pytest.raises(flexkv.InvalidArgumentError, match="unsupported"):
        _layouts.describe(torch.zeros(2, 2, BS, H, D), BS, None)  # ambiguous without the block count


def test_devices_are_told_apart():
    class Fake:
        def __init__(self, kind, index=None):
            self.device = type("D", (), {"type": kind, "index": index})()

    assert _layouts.device_of(torch.zeros(1)) is None
    assert _layouts.device_of(Fake("cuda", 3)) == 3
    assert _layouts.device_of(Fake("cuda")) == 0
    with pytest.raises(flexkv.NotSupportedError, match="'xpu'"):
        _layouts.device_of(Fake("xpu"))
