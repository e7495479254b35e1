"""Meeting point of the scheduler and worker instances living in one process.

With vLLM's uniprocess executor (TP=1) the worker instance is created, and registers its KV
cache, before the scheduler instance creates the engine; sometimes the other way round. Both
carry the same ``kv_transfer_config.engine_id``, so the registration waits here for its engine
(or reaches it at once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, List, Optional

_lock = threading.Lock()


@dataclass
class _Slot:
    manager: Any = None
    layers: Optional[list] = None
    num_blocks: int = 0
    device: Optional[int] = None
    keepalive: List[Any] = field(default_factory=list)


_slots: dict = {}


def _slot(engine_id: str) -> _Slot:
    s = _slots.get(engine_id)
    if s is None:
        s = _slots[engine_id] = _Slot()
    return s


def attach(engine_id: str, manager) -> None:
    """The scheduler's engine is ready; applies a registration that arrived first."""
    with _lock:
        s = _slot(engine_id)
        s.manager = manager
        layers, num_blocks, device = s.layers, s.num_blocks, s.device
    if layers is not None:
        manager.register_kv_caches(layers, num_blocks, device)


def detach(engine_id: str) -> None:
    with _lock:
        _slots.pop(engine_id, None)


def register(engine_id: str, layers: list, num_blocks: int, keepalive: list, device: Optional[int] = None) -> bool:
    """A worker's KV cache (host memory, or CUDA device ``device``); registered now if the
    engine exists (returns True), else kept."""
    with _lock:
        s = _slot(engine_id)
        s.layers, s.num_blocks, s.keepalive, s.device = layers, num_blocks, keepalive, device
        manager = s.manager
    if manager is not None:
        manager.register_kv_caches(layers, num_blocks, device)
        return True
    return False

