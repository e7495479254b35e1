"""The worker-side half: registers the KV cache tensors with the engine. The transfers run on
the scheduler side, so the forward-pass hooks have nothing to do; the worker's other job is to
hand vLLM, in each step's output, the load errors that step's metadata carries (vLLM only
takes them from workers)."""

from __future__ import annotations

from typing import Dict, Optional

from ... import _errors
from ...config import _bool
from . import _deployment, _layouts, _log, _registry


def _rank() -> int:
    """This worker's rank among the scheduler's ``world_size`` workers: pipeline stage, then
    tensor-parallel rank (vLLM's config has no rank field: ask its process groups)."""
    try:
        from vllm.distributed.parallel_state import get_tp_group

        tp = get_tp_group()
        rank = int(tp.rank_in_group)
    except Exception:
        return 0
    try:
        from vllm.distributed.parallel_state import get_pp_group

        rank += int(get_pp_group().rank_in_group) * int(tp.world_size)
    except Exception:
        pass  # no pipeline parallelism
    return rank


def extent(layer, num_blocks: int):
    """(address, bytes) of the memory a layer's blocks span."""
    lo = layer.base + min(0, layer.kv_stride * (layer.num_kv - 1))
    hi = layer.base + (num_blocks - 1) * layer.block_stride + max(0, layer.kv_stride * (layer.num_kv - 1)) + layer.span_bytes
    return lo, hi - lo


class WorkerSide:
    """One per vLLM worker."""

    def __init__(self, vllm_config, kv_cache_config=None) -> None:
        self.engine_id = str(getattr(vllm_config.kv_transfer_config, "engine_id", None) or "default")
        self.block_size = int(vllm_config.cache_config.block_size)
        self.num_blocks: Optional[int] = getattr(kv_cache_config, "num_blocks", None)
        self.world_size = _deployment.world_size(vllm_config)
        self.in_other_process = _deployment.workers_in_other_processes(vllm_config)
        self.dp_rank = _deployment.dp_rank(vllm_config)
        self.tensors: Dict[str, object] = {}
        extra = getattr(vllm_config.kv_transfer_config, "kv_connector_extra_config", None) or {}
        self.socket_override = extra.get("registration_socket")
        try:
            self.huge_pages = _bool(extra.get("worker_huge_pages", True))
        except ValueError as e:
            raise _errors.ConfigError(f"kv_connector_extra_config worker_huge_pages: {e}") from e
        self.rank = _rank()
        self.registration = None

    def register_kv_caches(self, kv_caches: Dict[str, object]) -> None:
        """Describes each distinct cache tensor (layers may share one) and hands the layout to
        the engine in this process. Errors here are configuration errors and are raised: vLLM
        then fails at start-up with our message instead of serving without a cache."""
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
        if self.in_other_process:
            self._register_remote(layers, num_blocks, device)
            return
        _registry.register(self.engine_id, layers, num_blocks, list(kv_caches.values()), device)
        _log.logger.info("FlexKv: registered %d KV cache tensors of %d blocks", len(layers), num_blocks)

    def _register_remote(self, layers, num_blocks: int, device) -> None:
        """Another process holds the engine: describe the shard (CUDA IPC handles for GPU memory;
        errors here fail vLLM's start with our message) and register it in the background,
        because vLLM builds the scheduler only after every worker returned from this call."""
        from ...cuda_ipc import export
        from ._registration import RegistrationClient, socket_path

        ipc = None
        if device is not None:
            ipc = []
            for i, layer in enumerate(layers):
                try:
                    ipc.append(export(layer.base))
                except _errors.FlexKVError as e:
                    raise type(e)(f"FlexKv: rank {self.rank} cannot share KV cache tensor {i} with the engine: {e}") from e
        if device is None and self.huge_pages:
            from ..._hugepages import back_with_huge_pages

            back_with_huge_pages(extent(l, num_blocks) for l in layers)
        self.registration = RegistrationClient(socket_path(self.engine_id, self.socket_override, self.dp_rank), self.rank,
                                               self.world_size, layers, num_blocks, cuda_ipc=ipc)
        _log.logger.info("FlexKv: rank %d registers its KV cache shard (%s memory) with the scheduler", self.rank,
                         "GPU" if device is not None else "host")

    @staticmethod
    def load_errors(metadata) -> set:
        """The failed block ids this step's metadata carries for vLLM."""
        return set(getattr(metadata, "load_errors", None) or ())

    @staticmethod
    def stats(metadata):
        """A never-empty stats object, so vLLM keeps calling update_connector_output in steps
        without a forward pass; it carries only the step it ran (the scheduler side owns the
        counters), which tells the scheduler side which metadata this output answers."""
        try:
            from .metadata import FlexKVStats
        except ImportError:
            return None
        if FlexKVStats is None:
            return None
        return FlexKVStats(data={"step": int(getattr(metadata, "step", 0) or 0)})
