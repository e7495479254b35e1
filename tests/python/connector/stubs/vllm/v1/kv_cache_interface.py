"""``KVCacheConfig``: what the 0.12+ constructor's third argument carries. Only
full attention and MLA specs; ``page_size_bytes`` is one block of one layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class FullAttentionSpec:
    block_size: int
    num_kv_heads: int
    head_size: int
    dtype: torch.dtype

    @property
    def page_size_bytes(self) -> int:
        return 2 * self.block_size * self.num_kv_heads * self.head_size * torch.tensor([], dtype=self.dtype).element_size()


@dataclass(frozen=True)
class MLAAttentionSpec(FullAttentionSpec):
    @property
    def page_size_bytes(self) -> int:
        # K and V are one latent vector per token.
        return self.block_size * self.num_kv_heads * self.head_size * torch.tensor([], dtype=self.dtype).element_size()


@dataclass
class KVCacheTensor:
    size: int
    shared_by: list[str] = field(default_factory=list)


@dataclass
class KVCacheGroupSpec:
    layer_names: list[str]
    kv_cache_spec: FullAttentionSpec


@dataclass
class KVCacheConfig:
    num_blocks: int
    kv_cache_tensors: list[KVCacheTensor]
    kv_cache_groups: list[KVCacheGroupSpec]
