"""``get_tp_group()`` / ``get_world_group()``: where a worker-side connector learns its rank
(``parallel_config`` has no TP rank field). In vLLM each worker process has its own
groups; the harness runs several workers in one process and calls :func:`set_rank` before it
calls into worker ``r``'s connector, so these read like the real ones inside that call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GroupCoordinator:
    rank_in_group: int = 0
    world_size: int = 1
    local_rank: int = 0
    rank: int = 0

    @property
    def is_first_rank(self) -> bool:
        return self.rank_in_group == 0


_TP = GroupCoordinator()
_WORLD = GroupCoordinator()


def get_tp_group() -> GroupCoordinator:
    return _TP


def get_world_group() -> GroupCoordinator:
    return _WORLD


def get_tensor_model_parallel_rank() -> int:
    return _TP.rank_in_group


def get_tensor_model_parallel_world_size() -> int:
    return _TP.world_size


def set_rank(tp_rank: int = 0, tp_size: int = 1, local_rank: int | None = None) -> None:
    """Stub-only: make this process look like TP rank ``tp_rank`` of ``tp_size``."""
    local = tp_rank if local_rank is None else local_rank
    _TP.rank_in_group, _TP.world_size, _TP.local_rank, _TP.rank = tp_rank, tp_size, local, tp_rank
    _WORLD.rank_in_group, _WORLD.world_size, _WORLD.local_rank, _WORLD.rank = tp_rank, tp_size, local, tp_rank
