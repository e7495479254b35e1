"""Shared fixtures: KV caches as real torch CPU tensors in each layout, and engine factories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import flexkv
from flexkv import KVLayer

REPO = Path(__file__).resolve().parents[2]


class KvCache:
    """A paged KV cache of ``num_layers`` torch tensors in one of vLLM's layouts."""

    def __init__(self, layout: str, num_blocks: int = 32, block_size: int = 16, heads: int = 2, head_size: int = 8,
                 num_layers: int = 2, dtype=torch.float16, seed: int = 0) -> None:
        self.layout, self.num_blocks, self.block_size = layout, num_blocks, block_size
        shape = {
            "kv_first": (2, num_blocks, block_size, heads, head_size),
            "blocks_first": (num_blocks, 2, block_size, heads, head_size),
            "packed": (num_blocks, heads, block_size, 2 * head_size),
            "mla": (num_blocks, block_size, head_size),
        }[layout]
        g = torch.Generator().manual_seed(seed)
        self.tensors = [torch.randn(shape, generator=g).to(dtype) for _ in range(num_layers)]

    def layers(self) -> list[KVLayer]:
        out = []
        for t in self.tensors:
            e = t.element_size()
            if self.layout == "kv_first":
                out.append(KVLayer(t.data_ptr(), t.stride(1) * e, t[0, 0].numel() * e, t.stride(0) * e, 2))
            elif self.layout == "blocks_first":
                out.append(KVLayer(t.data_ptr(), t.stride(0) * e, t[0, 0].numel() * e, t.stride(1) * e, 2))
            else:
                out.append(KVLayer(t.data_ptr(), t.stride(0) * e, t[0].numel() * e))
        return out

    @property
    def block_bytes(self) -> int:
        return sum(l.span_bytes * l.num_kv for l in self.layers())

    def block(self, b: int) -> list[torch.Tensor]:
        """Block b's data per layer, as raw int16 so comparisons are bit-exact."""
        if self.layout == "kv_first":
            return [t[:, b].clone().view(torch.int16) for t in self.tensors]
        return [t[b].clone().view(torch.int16) for t in self.tensors]

    def zero_block(self, b: int) -> None:
        for t in self.tensors:
            if self.layout == "kv_first":
                t[:, b].zero_()
            else:
                t[b].zero_()

    def same(self, a: int, b: int) -> bool:
        return all(torch.equal(x, y) for x, y in zip(self.block(a), self.block(b)))


@pytest.fixture
def kv_cache():
    return KvCache


@pytest.fixture
def make_engine():
    """Factory: an engine registered on a KvCache; closed after the test."""
    made = []

    def make(cache: KvCache | None = None, **cfg):
        base = {"num_cpu_blocks": 64, "use_hugepage_cpu_buffer": False, "transfer_threads": 2,
                "tokens_per_block": cache.block_size if cache else 16}
        if cache is not None:
            base["block_bytes"] = cache.block_bytes
        else:
            base["block_bytes"] = 4096
        base.update(cfg)
        m = flexkv.KVManager(base)
        if cache is not None:
            m.register_kv_caches(cache.layers(), cache.num_blocks)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def tokens(n: int, start: int = 1000) -> list[int]:
    return list(range(start, start + n))


sys.path.insert(0, str(Path(__file__).parent))
