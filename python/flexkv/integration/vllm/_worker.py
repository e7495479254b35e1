"""The worker-side half: registers the KV cache tensors with the engine. The transfers run on
the scheduler side, so the forward-pass hooks have nothing to do; the worker's other job is to
hand vLLM the load errors the scheduler found (vLLM only takes them from workers)."""

from __future__ import annotations

from typing import Dict, Optional

from ... import _errors
from . import _layouts, _log, _registry


class WorkerSide:
    """One per vLLM worker."""

    def __init__(self, vllm_config, kv_cache_config=None) -> None:
        self.engine_id = str(getattr(vllm_config.kv_transfer_config, "engine_id", None) or "default")
        self.block_size = int(vllm_config.cache_config.block_size)
        self.num_blocks: Optional[int] = getattr(kv_cache_config, "num_blocks", None)
        pc = vllm_config.parallel_config
        self.world_size = int(getattr(pc, "world_size", 1) or 1)
        self.tensors: Dict[str, object] = {}

    def register_kv_caches(self, kv_caches: Dict[str, object]) -> None:
        """Describes each distinct cache tensor (layers may share one) and hands the layout to
        the engine in this process. Errors here are configuration errors and are raised: vLLM
        then fails at start-up with our message instead of serving without a cache."""
        if self.world_size > 1:
            raise _errors.NotSupportedError(
                f"FlexKv: this vLLM runs {self.world_size} workers; workers in other processes (TP/PP > 1) "
                "are not supported by this FlexKv build yet. Run with tensor_parallel_size=1.")
        if not kv_caches:
            raise _errors.InvalidArgumentError("register_kv_caches got no KV cache tensors")
        layers, seen, num_blocks = [], set(), self.num_blocks
        devices = {_layouts.device_of(t) for t in kv_caches.values()}
        if len(devices) != 1:
            raise _errors.InvalidArgumentError(f"KV cache tensors live on several devices: {sorted(map(str, devices))}")
        device = devices.pop()
        for name, t in kv_caches.items():
            if t.data_ptr() in seen:
                continue  # KV sharing: one tensor serves several layer names
            seen.add(t.data_ptr())
            try:
                layer, n = _layouts.describe(t, self.block_size, num_blocks)
            except _errors.FlexKVError as e:
                raise type(e)(f"layer '{name}': {e}") from e
            if num_blocks is None:
                num_blocks = n
            elif n != num_blocks:
                raise _errors.InvalidArgumentError(f"layer '{name}' has {n} blocks, other layers {num_blocks}")
            layers.append(layer)
        self.tensors = dict(kv_caches)  # keep the memory alive while the engine points into it
        _registry.register(self.engine_id, layers, num_blocks, list(kv_caches.values()), device)
        _log.logger.info("FlexKv: registered %d KV cache tensors of %d blocks", len(layers), num_blocks)

    def get_block_ids_with_load_errors(self) -> set:
        return _registry.take_load_errors(self.engine_id)

    def stats(self):
        """A never-empty stats object, so vLLM keeps stepping the connector output."""
        try:
            from .metadata import FlexKVStats
        except ImportError:
            return None
        return FlexKVStats(data={}) if FlexKVStats is not None else None
