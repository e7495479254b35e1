"""The GPU block pool and per-request block tables: the part of vLLM's KVCacheManager the
connector sees. No prefix cache (a freed block is simply free); block 0 is vLLM's null block
and is never handed out, so a connector that treats 0 as "no block" is not fooled."""

from __future__ import annotations

from collections import deque
from typing import Callable, Optional

from vllm.v1.core.kv_cache_manager import KVCacheBlock, KVCacheBlocks


class BlockPool:
    def __init__(self, num_gpu_blocks: int, block_size: int) -> None:
        assert num_gpu_blocks >= 2, "block 0 is reserved; need at least one usable block"
        self.num_gpu_blocks, self.block_size = num_gpu_blocks, block_size
        self._free: deque[int] = deque(range(1, num_gpu_blocks))
        self._tables: dict[str, list[int]] = {}
        # Called with freshly allocated block ids (the harness poisons them in the workers).
        self.on_allocate: Optional[Callable[[list[int]], None]] = None

    @property
    def num_free_blocks(self) -> int:
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_gpu_blocks - 1 - len(self._free)

    def block_ids(self, req_id: str) -> list[int]:
        return list(self._tables.get(req_id, ()))

    def get_blocks(self, req_id: str) -> KVCacheBlocks:
        return _blocks(self._tables.get(req_id, []))

    def allocate_slots(self, req_id: str, num_tokens_total: int) -> Optional[KVCacheBlocks]:
        """Grows the request's table to cover ``num_tokens_total`` tokens; returns the new
        blocks, or None (nothing allocated) when the pool is short."""
        table = self._tables.setdefault(req_id, [])
        need = -(-num_tokens_total // self.block_size) - len(table)
        if need > len(self._free):
            if not table:
                del self._tables[req_id]
            return None
        new = [self._free.popleft() for _ in range(max(need, 0))]
        table.extend(new)
        if new and self.on_allocate is not None:
            self.on_allocate(new)
        return _blocks(new)

    def free(self, req_id: str) -> None:
        # vLLM frees a request's blocks tail first.
        for b in reversed(self._tables.pop(req_id, [])):
            self._free.append(b)

    def reset_prefix_cache(self) -> bool:
        # vLLM refuses while any block besides the null block is referenced.
        return self.num_used_blocks == 0


def _blocks(ids: list[int]) -> KVCacheBlocks:
    return KVCacheBlocks((tuple(KVCacheBlock(b, ref_cnt=1) for b in ids),))
