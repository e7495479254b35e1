"""``vllm.distributed.kv_events``' event types, the fields and field order of vLLM's (2026): there
they are msgspec Structs (array_like, tagged) published over ZMQ; here plain dataclasses, which
compare by value, so tests can check an event as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

ExternalBlockHash = Union[bytes, int]
MEDIUM_GPU = "GPU"


class KVCacheEvent:
    """Base of all KV cache events."""


@dataclass(frozen=True)
class BlockStored(KVCacheEvent):
    block_hashes: list
    parent_block_hash: Optional[ExternalBlockHash]
    token_ids: list
    block_size: int
    lora_id: Optional[int]
    medium: Optional[str]
    lora_name: Optional[str]
    extra_keys: Optional[list] = None
    group_idx: Optional[int] = None
    kv_cache_spec_kind: Optional[str] = None
    kv_cache_spec_sliding_window: Optional[int] = None

    def __hash__(self) -> int:
        return hash((tuple(self.block_hashes), self.parent_block_hash, tuple(self.token_ids), self.block_size,
                     self.medium))


@dataclass(frozen=True)
class BlockRemoved(KVCacheEvent):
    block_hashes: list
    medium: Optional[str]
    group_idx: Optional[int] = None

    def __hash__(self) -> int:
        return hash((tuple(self.block_hashes), self.medium, self.group_idx))


@dataclass(frozen=True)
class AllBlocksCleared(KVCacheEvent):
    pass


@dataclass
class KVEventBatch:
    ts: float
    events: list
    data_parallel_rank: Optional[int] = None


