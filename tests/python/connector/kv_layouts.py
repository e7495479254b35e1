"""The paged KV cache layouts vLLM hands to ``register_kv_caches``, as CPU tensors.

Each layout is allocated in its logical shape. ``token_view`` permutes it so that
``view[block, offset]`` is one token's KV (the harness writes and checks KV per token);
``block_view`` is block b's bytes in the backend's own order (what a connector copies).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Layout:
    name: str
    to_token_major: tuple[int, ...]  # permutation giving (num_blocks, block_size, ...)
    block_dim: int

    def shape(self, num_blocks: int, block_size: int, heads: int, head_size: int) -> tuple[int, ...]:
        n, bs, h, d = num_blocks, block_size, heads, head_size
        return {
            "kv_first": (2, n, bs, h, d),  # FlashAttention <= ~0.21
            "blocks_first": (n, 2, bs, h, d),  # FlashAttention ~0.22+, FlashInfer, Triton
            "packed": (n, h, bs, 2 * d),  # K|V in the last dim (mid 2026)
            "mla": (n, bs, d),  # one latent vector per token
            "cpu_attn": (2, n, h, bs, d),  # CPU_ATTN: heads before tokens
        }[self.name]

    def token_view(self, t: torch.Tensor) -> torch.Tensor:
        return t.permute(*self.to_token_major)

    def block_view(self, t: torch.Tensor, block_id: int) -> torch.Tensor:
        return t.select(self.block_dim, block_id)


LAYOUTS = {
    "kv_first": Layout("kv_first", (1, 2, 0, 3, 4), 1),
    "blocks_first": Layout("blocks_first", (0, 2, 1, 3, 4), 0),
    "packed": Layout("packed", (0, 2, 1, 3), 0),
    "mla": Layout("mla", (0, 1, 2), 0),
    "cpu_attn": Layout("cpu_attn", (1, 3, 0, 2, 4), 1),
}


def copy_kv_blocks(layout: Layout):
    """vLLM's ``copy_kv_blocks`` for ``set_host_xfer_buffer_ops``, for one layout:
    copies whole blocks between two dicts of same-layout tensors."""

    def op(src: dict, dst: dict, src_ids: list, dst_ids: list, direction: str) -> None:
        assert direction in ("h2d", "d2h")
        s_idx, d_idx = torch.tensor(src_ids, dtype=torch.long), torch.tensor(dst_ids, dtype=torch.long)
        for name, s in src.items():
            dst[name].index_copy_(layout.block_dim, d_idx, s.index_select(layout.block_dim, s_idx))

    return op
