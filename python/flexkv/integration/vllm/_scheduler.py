"""The scheduler-side half of the connector: turns vLLM's objects into request ids, token and
block-id buffers, calls the engine, and keeps the bookkeeping vLLM's contract needs (which ids
we owe a finished report, load errors routed through the worker). No cache logic lives here.
Every engine error is logged once and turned into the safe answer; vLLM's step never fails
because of FlexKv."""

from __future__ import annotations

import json
import logging
from typing import Any, Optional, Set, Tuple

from ... import _errors
from ...manager import KVManager
from . import _config, _log, _registry

_SAVED_REASONS = {"STOP", "LENGTH"}
_Metadata = None  # FlexKVConnectorMetadata, imported with the first SchedulerSide (it imports vLLM)


def _namespace(request) -> Optional[str]:
    """LoRA name and cache salt: requests that differ in either never share blocks."""
    lora = getattr(getattr(request, "lora_request", None), "lora_name", None)
    salt = getattr(request, "cache_salt", None)
    if lora is None and salt is None:
        return None
    return json.dumps([lora, salt])


def _block_ids(blocks) -> list:
    ids = blocks.get_block_ids() if blocks is not None else None
    return list(ids[0]) if ids else []


class SchedulerSide:
    """One per vLLM scheduler; owns the engine."""

    def __init__(self, vllm_config, kv_cache_config=None) -> None:
        global _Metadata
        from .metadata import FlexKVConnectorMetadata

        _Metadata = FlexKVConnectorMetadata
        cfg, self.options = _config.build(vllm_config, kv_cache_config)
        self.engine_id = str(getattr(vllm_config.kv_transfer_config, "engine_id", None) or "default")
        self.manager = KVManager(cfg)
        self.block_size = cfg["tokens_per_block"]
        self._loading: Set[str] = set()   # a load was planned: we owe one finished_recving
        self._holding: Set[str] = set()   # request_finished returned True: we owe one finished_sending
        self._deferred: Set[str] = set()  # loads that ended with errors, reported next step
        self._release: Set[str] = set()   # deferred loads whose errors reach vLLM this step
        self._running: Optional[Set[str]] = None
        self._planned = False            # something waits for launch_tasks
        _registry.attach(self.engine_id, self.manager)
        self.world_size = int(getattr(vllm_config.parallel_config, "world_size", 1) or 1)
        self.registration = None
        if self.world_size > 1:  # workers in other processes register over a Unix socket
            self._start_registration(vllm_config)
        _log.logger.info("FlexKv engine ready: %s", {k: cfg[k] for k in sorted(cfg) if k != "secret"})

    def _start_registration(self, vllm_config) -> None:
        """Listens for the workers, which registered before this scheduler existed and connect as
        soon as it listens, then waits for all of them. Missing ranks are an error in the log,
        not a failed start: vLLM serves without the cache until they register."""
        from ._registration import RegistrationServer, socket_path, timeout_from

        extra = getattr(vllm_config.kv_transfer_config, "kv_connector_extra_config", None) or {}
        timeout = timeout_from(extra)
        self.registration = RegistrationServer(socket_path(self.engine_id, extra.get("registration_socket")),
                                               self.world_size, self.manager)
        try:
            self.registration.wait_ready(timeout)
        except _errors.InvalidStateError as e:
            _log.logger.error("%s", e)

    # ---- lookups -------------------------------------------------------------------------

    def get_num_new_matched_tokens(self, request, num_computed_tokens: int) -> Tuple[int, bool]:
        try:
            n = self.manager.get_num_new_matched_tokens(
                request.request_id, request.all_token_ids, num_computed_tokens, _namespace(request))
        except _errors.FlexKVError as e:
            _log.once(f"match:{type(e).__name__}", "lookup failed, treating as a miss: %s", e)
            return 0, False
        # Always asynchronous: the load runs between steps while the request waits in
        # WAITING_FOR_REMOTE_KVS; a full-prompt hit is fine, vLLM recomputes the last token.
        return (n, True) if n > 0 else (0, False)

    def update_state_after_alloc(self, request, blocks, num_external_tokens: int) -> None:
        rid = request.request_id
        ids = _block_ids(blocks)
        try:
            self.manager.update_state_after_alloc(rid, ids, num_external_tokens)
        except _errors.FlexKVError as e:
            _log.once(f"alloc:{type(e).__name__}", "could not plan a load: %s", e)
            if num_external_tokens > 0 and rid not in self._loading:
                # vLLM now waits for this load: fail the request's blocks (vLLM only looks at the
                # external range) so they are recomputed, and report the load as ended.
                _registry.add_load_errors(self.engine_id, ids)
                self._release.add(rid)
            return
        if num_external_tokens > 0:
            self._loading.add(rid)
            self._planned = True

    # ---- per step ------------------------------------------------------------------------

    def build_connector_meta(self, scheduler_output) -> Any:
        # Loads that ended with errors last step are reported with the errors the workers
        # hand to vLLM in this step.
        self._release |= self._deferred
        self._deferred = set()
        self._handle_preemptions(scheduler_output)
        launched = 0
        if self._planned:  # most steps plan nothing: no call into the engine then
            self._planned = False
            try:
                launched = self.manager.launch_tasks()
            except _errors.FlexKVError as e:
                _log.once(f"launch:{type(e).__name__}", "launch failed: %s", e)
        return _Metadata(launched_tasks=launched)

    def update_connector_output(self, connector_output) -> None:
        if not (self._loading or self._holding or self._release):
            return  # nothing is owed to vLLM, so nothing can have finished
        try:
            got = self.manager.query_finished()
        except _errors.FlexKVError as e:
            _log.once(f"query:{type(e).__name__}", "polling transfers failed: %s", e)
            return
        recving = got.recving & self._loading
        sending = got.sending & self._holding
        if got.failed_blocks:
            # vLLM takes load errors from the workers at the start of a step, so the errors go
            # through the worker next step and these loads are reported in that same step.
            _registry.add_load_errors(self.engine_id, got.failed_blocks)
            self._deferred |= recving
            recving = set()
        recving |= self._release
        self._release = set()
        self._loading -= recving
        self._holding -= sending
        if recving:
            connector_output.finished_recving = set(connector_output.finished_recving or ()) | recving
        if sending:
            connector_output.finished_sending = set(connector_output.finished_sending or ()) | sending

    def request_finished(self, request, block_ids) -> Tuple[bool, Optional[dict]]:
        rid = request.request_id
        reason = getattr(request.get_finished_reason(), "name", None) if hasattr(request, "get_finished_reason") else None
        params = getattr(request, "kv_transfer_params", None) or {}
        save = reason in _SAVED_REASONS or (reason == "ABORT" and (self.options.save_on_abort or
                                                                  bool(params.get("offload_kv_on_finish"))))
        # KV exists for the computed tokens (placeholders of async scheduling excluded); the
        # engine saves the full blocks of all but the last token it is given.
        computed = request.num_computed_tokens - getattr(request, "num_output_placeholders", 0)
        n = max(0, min(request.num_tokens, computed + 1))
        tokens = list(request.all_token_ids)[:n]
        try:
            hold = self.manager.request_finished(rid, tokens, list(block_ids or ()), save=save,
                                                 namespace=_namespace(request))
        except _errors.FlexKVError as e:
            _log.once(f"finish:{type(e).__name__}", "could not save a finished request: %s", e)
            return False, None
        if hold:
            self._holding.add(rid)
            self._planned = True
        return hold, None

    def _handle_preemptions(self, scheduler_output) -> None:
        preempted = getattr(scheduler_output, "preempted_req_ids", None)
        if preempted is None:
            # Older vLLM: a request running last step, not scheduled now and not finished was preempted.
            scheduled = {r.req_id for r in getattr(scheduler_output, "scheduled_new_reqs", ())}
            cached = getattr(scheduler_output, "scheduled_cached_reqs", None)
            scheduled |= set(getattr(cached, "req_ids", ()) or ())
            if self._running is not None:
                preempted = self._running - scheduled - set(getattr(scheduler_output, "finished_req_ids", ()) or ())
            self._running = scheduled
        for rid in preempted or ():
            try:
                self.manager.cancel(rid)
            except _errors.UnknownRequestError:
                pass
            except _errors.FlexKVError as e:
                _log.once(f"preempt:{type(e).__name__}", "cancelling a preempted request failed: %s", e)

    # ---- the rest ------------------------------------------------------------------------

    def stats_data(self) -> dict:
        try:
            return self.manager.stats()
        except _errors.FlexKVError:
            return {}

    def reset_cache(self) -> bool:
        try:
            self.manager.reset()
            return True
        except _errors.FlexKVError as e:
            _log.once("reset", "reset_cache failed: %s", e, level=logging.ERROR)
            return False

    def is_ready(self) -> bool:
        """Whether every worker registered its KV cache."""
        if self.registration is not None:
            return self.registration.ready.is_set()
        return bool(self.stats_data().get("registered"))

    def shutdown(self) -> None:
        if self.registration is not None:
            self.registration.close()
        _registry.detach(self.engine_id)
        self.manager.close()

