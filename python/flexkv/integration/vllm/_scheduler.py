"""The scheduler-side half of the connector: turns vLLM's objects into request ids, token and
block-id buffers, calls the engine, and keeps the bookkeeping vLLM's contract needs (which ids
we owe a finished report, load errors routed through the workers, saves flushed before vLLM
goes idle). No cache logic lives here. Every engine error is logged once and turned into the
safe answer; vLLM's step never fails because of FlexKv.

Threads: vLLM calls every method from its scheduler thread (EngineCore's busy loop), one at a
time; this object and the helpers it owns (LoadErrorRoute, StepStats) are touched only there.
The registration server has threads of its own and only calls the manager.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Optional, Set, Tuple

from ... import _errors
from ...config import redacted
from ...manager import KVManager
from . import _config, _deployment, _log
from ._kv_events import KvEventsBridge
from ._load_errors import LoadErrorRoute
from ._step_stats import StepStats

_SAVED_REASONS = {"STOP", "LENGTH"}
_Metadata = None  # FlexKVConnectorMetadata, imported with the first SchedulerSide (it imports vLLM)
_Stats = None     # FlexKVStats likewise (None on vLLM without connector stats)


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


def _load_failure_policy(vllm_config) -> str:
    return str(getattr(vllm_config.kv_transfer_config, "kv_load_failure_policy", "recompute") or "recompute")


class SchedulerSide:
    """One per vLLM scheduler; owns the engine."""

    def __init__(self, vllm_config, kv_cache_config=None) -> None:
        global _Metadata, _Stats
        from .metadata import FlexKVConnectorMetadata, FlexKVStats

        _Metadata, _Stats = FlexKVConnectorMetadata, FlexKVStats
        cfg, self.options = _config.build(vllm_config, kv_cache_config)
        self.engine_id = str(getattr(vllm_config.kv_transfer_config, "engine_id", None) or "default")
        self.manager = KVManager(cfg)
        self.block_size = cfg["tokens_per_block"]
        self._loading: Dict[str, list] = {}  # a load was planned: we owe one finished_recving; its block ids
        self._holding: Set[str] = set()      # request_finished returned True: we owe one finished_sending
        self._unfinished: Set[str] = set()   # requests vLLM has shown us and not finished
        self._asked: Dict[str, int] = {}     # request id -> vLLM's local hit when we were asked
        self._errors = LoadErrorRoute()
        self._stats = StepStats(self.manager)
        self._last_read_t = self._last_report_t = time.monotonic()
        self._stats_due = False              # report at the next chance (vLLM is about to go idle)
        self._step = 0
        self._planned = False                # something waits for launch_tasks
        self._running: Optional[Set[str]] = None
        # vLLM's KV events (kv_events_config), None when off: then nothing is recorded or kept.
        self.kv_events = KvEventsBridge.create(vllm_config, self.manager, self.block_size,
                                               self.options.kv_events_buffer)
        self._attach_workers(vllm_config)
        policy = _load_failure_policy(vllm_config)
        if policy == "fail" and (cfg.get("ssd_cache_gb") or cfg.get("remote_url") or cfg.get("redis_host")):
            _log.logger.warning(
                "FlexKv: vLLM's kv_load_failure_policy is 'fail': a block that fails to load from SSD or the "
                "remote store (checksum, I/O error, store down) ends its request with an error. Set "
                "\"kv_load_failure_policy\": \"recompute\" in --kv-transfer-config to recompute those blocks instead.")
        _log.logger.info("FlexKv engine ready: %s", redacted(cfg))

    def _attach_workers(self, vllm_config) -> None:
        """Workers in this process meet the engine in the registry; workers in other processes
        (TP > 1, or the multiprocess/Ray executor) connect to a Unix socket."""
        from . import _registry

        _registry.attach(self.engine_id, self.manager)
        self.world_size = _deployment.world_size(vllm_config)
        self.registration = None
        if _deployment.workers_in_other_processes(vllm_config):
            self._start_registration(vllm_config)

    def _start_registration(self, vllm_config) -> None:
        """Listens for the workers, which registered before this scheduler existed and connect as
        soon as it listens, then waits for all of them. Missing ranks are an error in the log,
        not a failed start: vLLM serves without the cache until they register."""
        from ._registration import RegistrationServer, socket_path, timeout_from

        extra = getattr(vllm_config.kv_transfer_config, "kv_connector_extra_config", None) or {}
        timeout = timeout_from(extra)
        path = socket_path(self.engine_id, extra.get("registration_socket"), _deployment.dp_rank(vllm_config))
        self.registration = RegistrationServer(path, self.world_size, self.manager)
        try:
            self.registration.wait_ready(timeout)
        except _errors.InvalidStateError as e:
            _log.logger.error("%s", e)

    # ---- lookups -------------------------------------------------------------------------

    def on_new_request(self, request) -> None:
        self._unfinished.add(request.request_id)

    def get_num_new_matched_tokens(self, request, num_computed_tokens: int) -> Tuple[Optional[int], bool]:
        rid = request.request_id
        self._unfinished.add(rid)
        try:
            n = self.manager.get_num_new_matched_tokens(rid, request.all_token_ids, num_computed_tokens,
                                                        _namespace(request))
        except _errors.FlexKVError as e:
            _log.once(f"match:{type(e).__name__}", "lookup failed, treating as a miss: %s", e)
            return 0, False
        if self.kv_events is not None:
            self.kv_events.send_hashes(request)  # the engine knows the request now
        if n is None:
            return None, False  # the remote store is being asked: vLLM retries next step
        self._asked[rid] = num_computed_tokens
        # Always asynchronous: the load runs between steps while the request waits in
        # WAITING_FOR_REMOTE_KVS; a full-prompt hit is fine, vLLM recomputes the last token.
        return (n, True) if n > 0 else (0, False)

    def update_state_after_alloc(self, request, blocks, num_external_tokens: int) -> None:
        rid = request.request_id
        ids = _block_ids(blocks)
        first = self._asked.pop(rid, 0) // self.block_size
        external = ids[first:first + -(-num_external_tokens // self.block_size)] if num_external_tokens else []
        try:
            self.manager.update_state_after_alloc(rid, ids, num_external_tokens)
        except _errors.FlexKVError as e:
            _log.once(f"alloc:{type(e).__name__}", "could not plan a load: %s", e)
            if num_external_tokens > 0 and rid not in self._loading:
                # vLLM now waits for this load: fail its blocks so they are recomputed, and
                # report the load as ended once vLLM has the failed ids.
                self._loading[rid] = external
                self._errors.hold(rid, external)
            return
        if num_external_tokens > 0:
            self._loading[rid] = external
            self._planned = True
            if self.kv_events is not None:  # the loaded blocks are stored in CPU as they arrive
                self.kv_events.remember(request, first, first + len(external))

    # ---- per step ------------------------------------------------------------------------

    def build_connector_meta(self, scheduler_output) -> Any:
        self._step += 1
        self._handle_preemptions(scheduler_output)
        launched = self._launch() if self._planned else 0  # most steps plan nothing: no engine call
        return _Metadata(launched_tasks=launched, step=self._step, load_errors=self._errors.take_for_step(self._step))

    def _launch(self) -> int:
        self._planned = False
        try:
            return self.manager.launch_tasks()
        except _errors.FlexKVError as e:
            _log.once(f"launch:{type(e).__name__}", "launch failed: %s", e)
            return 0

    def update_connector_output(self, connector_output) -> None:
        recving: Set[str] = set()
        if self._errors:
            stats = getattr(connector_output, "kv_connector_stats", None)
            step = (getattr(stats, "data", None) or {}).get("step")
            recving = self._errors.on_output(getattr(connector_output, "invalid_block_ids", None), step)
        sending: Set[str] = set()
        if self._loading or self._holding:
            self._poll(recving, sending)
            if not self._unfinished:
                self._flush(recving, sending)
        if not self._unfinished:
            self._stats_due = True  # vLLM may go idle after this step: report what is left
        for rid in recving:
            self._loading.pop(rid, None)
        self._holding -= sending
        if recving:
            connector_output.finished_recving = set(connector_output.finished_recving or ()) | recving
        if sending:
            connector_output.finished_sending = set(connector_output.finished_sending or ()) | sending

    def _poll(self, recving: Set[str], sending: Set[str]) -> None:
        """Collects what the engine finished into ``recving``/``sending``. Loads with failed
        blocks are held until vLLM has the ids (LoadErrorRoute)."""
        try:
            got = self.manager.query_finished()
        except _errors.FlexKVError as e:
            _log.once(f"query:{type(e).__name__}", "polling transfers failed: %s", e)
            return
        failed = set(got.failed_blocks)
        for rid in got.recving:
            blocks = self._loading.get(rid)
            if blocks is None:
                continue
            mine = failed.intersection(blocks)
            if mine and rid in self._unfinished:
                failed -= mine
                self._errors.hold(rid, mine)
            else:  # an aborted request's blocks are freed, not computed: nothing to wait for
                recving.add(rid)
        if failed:  # vLLM recomputes whatever still holds these ids
            self._errors.report(failed)
        sending |= got.sending & self._holding

    def _flush(self, recving: Set[str], sending: Set[str]) -> None:
        """No request of vLLM's is left unfinished, so vLLM stops stepping after this step: wait
        (bounded) for the saves, and loads of aborted requests, it still holds blocks for, and
        report them now. Otherwise those blocks would stay held, KV usage above zero and
        reset_prefix_cache() failing, until some unrelated request arrives."""
        if self._planned:
            self._launch()
        deadline = time.monotonic() + self.options.idle_flush_timeout_ms / 1000.0
        while True:
            owed = (self._holding - sending) or (set(self._loading) - recving - self._errors.held())
            left = deadline - time.monotonic()
            if not owed or left <= 0:
                return
            try:
                self.manager.wait(left)
            except _errors.FlexKVError as e:
                _log.once(f"flush:{type(e).__name__}", "waiting for transfers failed: %s", e)
                return
            self._poll(recving, sending)

    def request_finished(self, request, block_ids) -> Tuple[bool, Optional[dict]]:
        rid = request.request_id
        self._unfinished.discard(rid)
        self._asked.pop(rid, None)
        reason = getattr(request.get_finished_reason(), "name", None) if hasattr(request, "get_finished_reason") else None
        params = getattr(request, "kv_transfer_params", None) or {}
        save = reason in _SAVED_REASONS or (reason == "ABORT" and (self.options.save_on_abort or
                                                                  bool(params.get("offload_kv_on_finish"))))
        # KV exists for the computed tokens (placeholders of async scheduling excluded); the
        # engine saves the full blocks of all but the last token it is given.
        computed = request.num_computed_tokens - getattr(request, "num_output_placeholders", 0)
        n = max(0, min(request.num_tokens, computed + 1))
        tokens = request.all_token_ids[:n]  # one copy; the engine is sent only what it lacks
        if self.kv_events is not None and save:
            self.kv_events.send_hashes(request)  # blocks decoding added since the lookup
        try:
            hold = self.manager.request_finished(rid, tokens, list(block_ids or ()), save=save,
                                                 namespace=_namespace(request))
        except _errors.FlexKVError as e:
            _log.once(f"finish:{type(e).__name__}", "could not save a finished request: %s", e)
            return False, None
        finally:
            if self.kv_events is not None:
                self.kv_events.forget(rid)
        if hold:
            self._holding.add(rid)
            self._planned = True
            if self.kv_events is not None:
                self.kv_events.remember(request, 0, max(0, n - 1) // self.block_size)
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

    def step_stats(self):
        """What changed since the last report, for vLLM's ``get_kv_connector_stats``, which it
        calls every step: at most every ``stats_interval_ms`` (vLLM logs every few seconds and
        Prometheus scrapes as rarely, so a per-step report only costs time), and at once after a
        step that found nothing left running, so the last figures reach vLLM before it goes idle.
        None when it is not time yet or nothing changed."""
        if _Stats is None:
            return None
        now = time.monotonic()
        if not self._stats_due and (now - self._last_read_t) * 1000.0 < self.options.stats_interval_ms:
            return None
        self._stats_due, self._last_read_t = False, now
        try:
            changed = self._stats.changes()
        except _errors.FlexKVError:
            return None
        if changed is None:
            return None
        elapsed, self._last_report_t = now - self._last_report_t, now
        counters, gauges = changed
        return _Stats(data={"counters": counters, "gauges": gauges, "elapsed_us": int(elapsed * 1e6)})

    def take_events(self) -> list:
        """vLLM's KV events since the last call (vLLM's take_events, once a step); none when off."""
        return self.kv_events.take() if self.kv_events is not None else []

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
        from . import _registry

        if self.registration is not None:
            self.registration.close()
        _registry.detach(self.engine_id)
        self.manager.close()
