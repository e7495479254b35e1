"""``FlexKVConnectorV1Impl``: the object vLLM's built-in ``FlexKVConnectorV1`` (vLLM >= 0.17.2)
creates with ``(vllm_config, role)`` and forwards every connector call to.

The scheduler instance owns the engine (index, CPU tier, copy threads) and moves the bytes;
the worker instance registers its KV cache and hands vLLM the load errors of each step. The
forward-pass hooks are no-ops because the transfers happen between steps on the scheduler side.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _log
from ._config import publish_connector_options
from ._disabled import disabled_halves

_SCHEDULER, _WORKER = 0, 1


def _role_value(role) -> int:
    v = getattr(role, "value", role)
    if v not in (_SCHEDULER, _WORKER):
        name = getattr(role, "name", str(role))
        v = _SCHEDULER if "SCHEDULER" in name else _WORKER
    return v


class FlexKVConnectorV1Impl:
    """The connector's implementation, one per role."""

    def __init__(self, vllm_config, role, kv_cache_config=None) -> None:
        self._role = _role_value(role)
        self._connector_metadata = None
        self.scheduler = self.worker = None
        halves = disabled_halves(vllm_config, self._role == _SCHEDULER)
        self._disabled = halves is not None
        if self._disabled:  # ENABLE_FLEXKV=0: no engine, and the answers of an empty cache
            self.scheduler, self.worker = halves
            return
        publish_connector_options(vllm_config)  # the config file's connector options, where the halves read them
        if self._role == _SCHEDULER:
            from ._scheduler import SchedulerSide

            self.scheduler = SchedulerSide(vllm_config, kv_cache_config)
        else:
            from ._worker import WorkerSide

            self.worker = WorkerSide(vllm_config, kv_cache_config)

    @property
    def role(self) -> int:
        return self._role

    # ---- scheduler side ------------------------------------------------------------------

    def get_num_new_matched_tokens(self, request, num_computed_tokens: int) -> Tuple[Optional[int], bool]:
        return self.scheduler.get_num_new_matched_tokens(request, num_computed_tokens)

    def update_state_after_alloc(self, request, blocks, num_external_tokens: int) -> None:
        self.scheduler.update_state_after_alloc(request, blocks, num_external_tokens)

    def build_connector_meta(self, scheduler_output) -> Any:
        return self.scheduler.build_connector_meta(scheduler_output)

    def update_connector_output(self, connector_output) -> None:
        self.scheduler.update_connector_output(connector_output)

    def request_finished(self, request, block_ids) -> Tuple[bool, Optional[dict]]:
        return self.scheduler.request_finished(request, block_ids)

    def on_new_request(self, request) -> None:
        """vLLM (2026) announces each request as it arrives: until it finishes, the scheduler
        side does not wait for saves when a step finds nothing else running."""
        if self.scheduler is not None:
            self.scheduler.on_new_request(request)

    def bind_gpu_block_pool(self, gpu_block_pool) -> None:
        """No-op: FlexKv copies by block id and needs nothing of vLLM's block pool."""

    def take_events(self) -> Iterable[Any]:
        """KV events (blocks stored in or removed from a tier, resets) when vLLM's kv_events_config enables them."""
        return self.scheduler.take_events() if self.scheduler is not None else ()

    def is_ready(self) -> bool:
        """Whether every worker registered its KV cache (scheduler side)."""
        return self.scheduler.is_ready() if self.scheduler else True

    def reset_cache(self) -> Optional[bool]:
        return self.scheduler.reset_cache() if self.scheduler else None

    # ---- worker side ---------------------------------------------------------------------

    def register_kv_caches(self, kv_caches) -> None:
        self.worker.register_kv_caches(kv_caches)

    def bind_connector_metadata(self, connector_metadata) -> None:
        self._connector_metadata = connector_metadata

    def clear_connector_metadata(self) -> None:
        self._connector_metadata = None

    def start_load_kv(self, forward_context, **kwargs) -> None:
        """No-op: loads were launched by the scheduler side and finished before the request ran."""

    def wait_for_layer_load(self, layer_name: str) -> None:
        """No-op: nothing is loaded during the forward pass."""

    def save_kv_layer(self, layer_name: str, kv_layer, attn_metadata, **kwargs) -> None:
        """No-op: saves are planned when a request finishes and run on the scheduler side."""

    def wait_for_save(self) -> None:
        """No-op: vLLM holds a saved request's blocks until its save is reported finished."""

    def get_finished(self, finished_req_ids) -> Tuple[Optional[set], Optional[set]]:
        # Completions are reported by the scheduler side in update_connector_output.
        return None, None

    def _bound_metadata(self):
        """This step's metadata: bound on this object when vLLM calls it directly, else on the
        connector vLLM calls (vLLM's own wrapper, or the package's class), which is this worker
        process's ``get_kv_transfer_group()``."""
        if self._connector_metadata is not None:
            return self._connector_metadata
        try:
            from vllm.distributed.kv_transfer import get_kv_transfer_group, has_kv_transfer_group

            return getattr(get_kv_transfer_group(), "_connector_metadata", None) if has_kv_transfer_group() else None
        except Exception:  # a vLLM without the global: no metadata reaches us
            return None

    def get_block_ids_with_load_errors(self) -> set:
        return self.worker.load_errors(self._bound_metadata()) if self.worker else set()

    def handle_preemptions(self, kv_connector_metadata=None) -> None:
        """No-op on workers: the scheduler side cancels a preempted request's transfers in
        ``build_connector_meta`` (and waits until none of its copies runs) before vLLM reuses
        its blocks. Accepts both the old ``set[str]`` and the newer metadata argument."""

    # ---- both ----------------------------------------------------------------------------

    def get_kv_connector_stats(self):
        if self._disabled:
            return None
        if self.worker is not None:
            return self.worker.stats(self._bound_metadata())
        return self.scheduler.step_stats()

    def shutdown(self) -> None:
        try:
            if self.scheduler is not None:
                self.scheduler.shutdown()
            if self.worker is not None and self.worker.registration is not None:
                self.worker.registration.close()  # the scheduler deregisters this rank
        except Exception as e:  # shutting down must never raise into vLLM
            _log.once("shutdown", "shutdown failed: %s", e)
