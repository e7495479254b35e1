"""Where vLLM put the connector's two halves, from its configuration: whether workers run in
other processes (then they register over the Unix socket), and which data-parallel rank this
engine core serves (each DP rank has its own engine, SSD directory and socket)."""

from __future__ import annotations

import os
from typing import Optional

# Executors that run the worker inside the engine-core process (the in-process registry works).
_IN_PROCESS_BACKENDS = (None, "uni", "external_launcher")


def world_size(vllm_config) -> int:
    return int(getattr(vllm_config.parallel_config, "world_size", 1) or 1)


def workers_in_other_processes(vllm_config) -> bool:
    """TP/PP > 1, or ``--distributed-executor-backend mp``/Ray (or a custom executor class)
    even with one worker: the worker is not in the scheduler's process."""
    if world_size(vllm_config) > 1:
        return True
    backend = getattr(vllm_config.parallel_config, "distributed_executor_backend", None)
    return backend not in _IN_PROCESS_BACKENDS


def dp_rank(vllm_config) -> Optional[int]:
    """This engine core's data-parallel rank when vLLM runs several (``--data-parallel-size``)."""
    pc = vllm_config.parallel_config
    if int(getattr(pc, "data_parallel_size", 1) or 1) <= 1:
        return None
    return int(getattr(pc, "data_parallel_rank", 0) or 0)


def per_dp_rank_path(path: str, rank: Optional[int], directory: bool) -> str:
    """``path`` for DP rank ``rank``: a subdirectory ``dp<rank>`` of a directory, a ``.dp<rank>``
    suffix on a file name; unchanged without data parallelism."""
    if rank is None:
        return path
    return os.path.join(path, f"dp{rank}") if directory else f"{path}.dp{rank}"
