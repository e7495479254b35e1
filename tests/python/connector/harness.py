"""A vLLM engine as a KV connector sees it: ``Engine`` = EngineCore + uniprocess executor:
one SCHEDULER connector in a :class:`FakeScheduler`, one WORKER connector
per TP rank in a :class:`FakeWorker`, all in this process, created in vLLM's order (workers
and their ``register_kv_caches`` first, then the scheduler's connector).

Typical use::

    eng = Engine(vllm_config, num_gpu_blocks=64, layout="kv_first")
    r = eng.add_request(tokens(48), max_tokens=3)
    eng.run()                                   # steps while vLLM would
    assert eng.finished[r.request_id].num_cached_tokens == 0
    eng.close()

Connectors come from ``KVConnectorFactory.create_connector`` (as vLLM builds them) unless
``make_connector(vllm_config, role, kv_cache_config)`` is given.

Step orders, as vLLM's EngineCore has them: ``step()`` (schedule, execute, process the output)
and, with ``scheduler_config.async_scheduling`` (vLLM's default), ``step_with_batch_queue()``
with two batches in flight: a step that ran the model returns without processing anything, so
step k+1 is scheduled and its workers run before step k's output is processed. The GPU is
taken to be slower than the scheduler (a queued batch is never already done), which is the
steady state of a busy server.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from vllm.distributed import parallel_state
from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory
from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorRole
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.kv_cache_interface import (FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec, KVCacheTensor,
                                        MLAAttentionSpec)
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import LoRARequest, Request, RequestStatus

from .contract import ConnectorContractError, expect
from .fake_scheduler import EngineCoreOutput, FakeScheduler
from .fake_worker import FakeWorker
from .kv_aggregator import KVOutputAggregator
from .kv_model import next_token, prefix_seeds

__all__ = ["Engine", "StepResult", "FakeScheduler", "FakeWorker", "ConnectorContractError", "make_kv_cache_config",
           "prompt", "reference_outputs"]


@dataclass
class StepResult:
    """One engine step: the batch it scheduled (``scheduler_output``), and the batch whose
    output it processed (the same one in the plain order; an older one, or none, with the
    batch queue)."""

    scheduler_output: Optional[SchedulerOutput]
    model_output: Optional[ModelRunnerOutput]
    outputs: list[EngineCoreOutput]
    processed: Optional[SchedulerOutput] = None

    @property
    def computed_nothing(self) -> bool:
        so = self.scheduler_output
        return so is None or so.total_num_scheduled_tokens == 0


def make_kv_cache_config(vllm_config, num_gpu_blocks: int) -> KVCacheConfig:
    mc, pc, cc = vllm_config.model_config, vllm_config.parallel_config, vllm_config.cache_config
    spec_cls = MLAAttentionSpec if mc.use_mla else FullAttentionSpec
    spec = spec_cls(cc.block_size, mc.get_num_kv_heads(pc), mc.get_head_size(), mc.dtype)
    names = [f"model.layers.{i}.self_attn.attn" for i in range(mc.get_num_layers(pc))]
    return KVCacheConfig(num_blocks=num_gpu_blocks,
                         kv_cache_tensors=[KVCacheTensor(spec.page_size_bytes * num_gpu_blocks, [n]) for n in names],
                         kv_cache_groups=[KVCacheGroupSpec(names, spec)])


class Engine:
    def __init__(self, vllm_config, num_gpu_blocks: int = 64, layout: str = "kv_first",
                 make_connector: Optional[Callable[[Any, KVConnectorRole, Any], Any]] = None, *,
                 blocks_arg: str = "all", take_events_in: str = "update_from_output", check_alignment: bool = True,
                 poison: bool = True, check_reads: bool = True, write_kv: bool = True,
                 preemption_api: Optional[str] = "metadata",
                 no_forward_rule: str = "is_empty", wait_for_save_without_forward: bool = False,
                 pickle_metadata: Optional[bool] = None, batch_queue_size: Optional[int] = None) -> None:
        self.vllm_config = vllm_config
        self.kv_cache_config = make_kv_cache_config(vllm_config, num_gpu_blocks)
        make = make_connector or KVConnectorFactory.create_connector
        use_connector = vllm_config.kv_transfer_config is not None
        world = vllm_config.parallel_config.world_size
        self.workers: list[FakeWorker] = []
        for rank in range(world):
            parallel_state.set_rank(rank, vllm_config.parallel_config.tensor_parallel_size)
            conn = make(vllm_config, KVConnectorRole.WORKER, self.kv_cache_config) if use_connector else None
            self.workers.append(FakeWorker(vllm_config, conn, num_gpu_blocks, layout, rank, poison=poison,
                                           check_reads=check_reads, write_kv=write_kv, preemption_api=preemption_api,
                                           no_forward_rule=no_forward_rule,
                                           wait_for_save_without_forward=wait_for_save_without_forward))
        parallel_state.set_rank(0, vllm_config.parallel_config.tensor_parallel_size)
        sched_conn = make(vllm_config, KVConnectorRole.SCHEDULER, self.kv_cache_config) if use_connector else None
        self.scheduler = FakeScheduler(vllm_config, sched_conn, num_gpu_blocks, blocks_arg=blocks_arg,
                                       take_events_in=take_events_in, check_alignment=check_alignment)
        self.scheduler.pool.on_allocate = self._poison
        self.scheduler.on_local_hit = self._fill_local_hit
        self._aggregator = None
        if world > 1 and sched_conn is not None:
            n = sched_conn.get_finished_count() if hasattr(sched_conn, "get_finished_count") else None
            self._aggregator = KVOutputAggregator(n or world)
        # Multi-process executors pickle the metadata to each worker; uniprocess passes the object.
        self.pickle_metadata = world > 1 if pickle_metadata is None else pickle_metadata
        # The executor's max_concurrent_batches: 2 with async scheduling (uniproc and mp executors),
        # the number of pipeline stages with PP (``batch_queue_size`` plays that depth).
        self.batch_queue_size = batch_queue_size or (2 if vllm_config.scheduler_config.async_scheduling else 1)
        self.batch_queue: deque[tuple[SchedulerOutput, ModelRunnerOutput]] = deque()
        self.history: list[StepResult] = []
        self._next_id = 0
        self._closed = False

    # ---- accessors ------------------------------------------------------------------------

    @property
    def connector(self) -> Any:
        """The SCHEDULER connector instance."""
        return self.scheduler.connector

    @property
    def worker(self) -> FakeWorker:
        return self.workers[0]

    @property
    def finished(self) -> dict[str, Request]:
        return self.scheduler.finished

    def request(self, req_id: str) -> Request:
        return self.scheduler.requests.get(req_id) or self.scheduler.finished[req_id]

    # ---- requests -------------------------------------------------------------------------

    def add_request(self, prompt_token_ids: Sequence[int], max_tokens: int = 4, request_id: Optional[str] = None, *,
                    cache_salt: Optional[str] = None, lora_name: Optional[str] = None,
                    kv_transfer_params: Optional[dict] = None, eos_token_id: Optional[int] = None,
                    finish_status: RequestStatus = RequestStatus.FINISHED_STOPPED) -> Request:
        """A request that generates ``max_tokens`` tokens. When the last one is generated it
        finishes with ``finish_status``: STOPPED by default (as if it were EOS), or pass
        FINISHED_LENGTH_CAPPED for vLLM's max_tokens outcome."""
        rid = request_id or f"req-{self._next_id}"
        self._next_id += 1
        extra = {"kv_transfer_params": kv_transfer_params} if kv_transfer_params is not None else None
        lora = LoRARequest(lora_name, abs(hash(lora_name)) % 10_000 + 1) if lora_name else None
        req = Request(rid, list(prompt_token_ids), SamplingParams(max_tokens=max_tokens, extra_args=extra),
                      eos_token_id=eos_token_id, lora_request=lora, cache_salt=cache_salt,
                      block_size=self.vllm_config.cache_config.block_size)
        req.finish_status = finish_status
        self.scheduler.add_request(req)
        return req

    def abort(self, *req_ids: str) -> None:
        """Client abort / stop string: ``finish_requests(ids, FINISHED_ABORTED)`` between steps."""
        self.scheduler.finish_requests(req_ids, RequestStatus.FINISHED_ABORTED)

    def preempt(self, req_id: str) -> None:
        self.scheduler.preempt(req_id)

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        return self.scheduler.reset_prefix_cache(reset_running_requests, reset_connector)

    # ---- stepping -------------------------------------------------------------------------

    def step(self, force: bool = False) -> Optional[StepResult]:
        """One ``EngineCore.step()`` (or ``step_with_batch_queue()`` under async scheduling):
        nothing at all when the scheduler has no requests and no batch is in flight (unless
        ``force``, which plays FlexKV's 0.10.1.1 keep-alive patch)."""
        if self.batch_queue_size > 1:
            return self._step_with_batch_queue(force)
        if not (self.scheduler.has_requests() or force):
            return None
        so = self.scheduler.schedule()
        mro = self._execute_model(so)
        outs = self.scheduler.update_from_output(so, mro)
        res = StepResult(so, mro, outs, so)
        self.history.append(res)
        return res

    def _step_with_batch_queue(self, force: bool) -> Optional[StepResult]:
        q = self.batch_queue
        so = None
        if self.scheduler.has_requests() or (force and self.scheduler.held_request_ids()):
            so = self.scheduler.schedule()
            q.appendleft((so, self._execute_model(so)))
            if so.total_num_scheduled_tokens > 0 and len(q) < self.batch_queue_size:
                res = StepResult(so, None, [])  # the batch runs; nothing to process yet
                self.history.append(res)
                return res
        elif not q:
            return None
        done_so, mro = q.pop()
        outs = self.scheduler.update_from_output(done_so, mro)
        res = StepResult(so, mro, outs, done_so)
        self.history.append(res)
        return res

    def _execute_model(self, so: SchedulerOutput) -> ModelRunnerOutput:
        import pickle

        outs = []
        for w in self.workers:
            wso = pickle.loads(pickle.dumps(so)) if self.pickle_metadata else so
            outs.append(w.execute_model(wso))
        if self._aggregator is None:
            return outs[0]
        return self._aggregator.aggregate(outs)

    def busy(self, keep_alive: bool = False) -> bool:
        """vLLM's ``EngineCore.has_work()``: requests, or batches in flight."""
        return self.scheduler.has_requests() or bool(self.batch_queue) or \
            (keep_alive and bool(self.scheduler.held_request_ids()))

    def run_until(self, done: Callable[[], bool], max_steps: int = 10_000, timeout_s: float = 30.0,
                  keep_alive: bool = False, idle_sleep_s: float = 0.001) -> int:
        """Steps until ``done()``; sleeps a little after steps that computed nothing (requests
        parked on loads) so transfer threads progress. Returns the number of steps."""
        deadline = time.monotonic() + timeout_s
        steps = 0
        while not done():
            if steps >= max_steps or time.monotonic() > deadline:
                raise TimeoutError(f"not done after {steps} steps: {self.describe()}")
            if not self.busy(keep_alive):
                raise AssertionError(f"engine went idle before done(): {self.describe()}")
            res = self.step(force=keep_alive)
            steps += 1
            if res is None or res.computed_nothing:
                time.sleep(idle_sleep_s)
        return steps

    def run(self, keep_alive: bool = False, **kw) -> int:
        """Steps while vLLM's engine loop would (until no unfinished or just-finished request).
        With ``keep_alive`` it also steps while finished requests' blocks are held (delayed free),
        as FlexKV's patch for 0.10.1.1 does; stock vLLM goes idle with them held."""
        return self.run_until(lambda: not self.busy(keep_alive), keep_alive=keep_alive, **kw)

    def generate(self, prompts: Sequence[Sequence[int]], max_tokens: int = 4, **kw) -> list[Request]:
        reqs = [self.add_request(p, max_tokens) for p in prompts]
        self.run(**kw)
        return reqs

    # ---- checks ---------------------------------------------------------------------------

    def verify_request_blocks(self, request: Request, num_tokens: Optional[int] = None) -> int:
        """Every worker's copy of the request's computed full blocks holds the expected KV.
        The request must still hold its blocks (running, parked or held after finishing)."""
        ids = self.scheduler.pool.block_ids(request.request_id)
        expect(ids, f"{request.request_id} holds no blocks to verify")
        return min(w.verify_request_blocks(request, ids, num_tokens) for w in self.workers)

    def loaded_tokens_verified(self, req_id: str) -> int:
        """Tokens the model read for this request that it had not written itself (i.e. loaded
        by the connector), each checked against the expected KV (minimum over workers)."""
        return min(w.loaded_tokens_verified.get(req_id, 0) for w in self.workers)

    def logged_kv_metrics(self) -> Optional[dict]:
        """What vLLM's front end (KVConnectorLogging) would log for one interval covering every
        step so far: it rebuilds each step's stats with the connector class's
        ``build_kv_connector_stats(data)``, aggregates them, and logs ``reduce()``; None when
        there were no stats or the class returns None (vLLM then warns once and drops them)."""
        build = getattr(type(self.connector), "build_kv_connector_stats", None)
        acc = None
        for stats in self.scheduler.stats_history:
            rebuilt = build(copy.deepcopy(stats.data)) if build is not None else None
            if rebuilt is None:
                return None
            acc = rebuilt if acc is None else acc.aggregate(rebuilt)
        return acc.reduce() if acc is not None and not acc.is_empty() else None

    def assert_quiescent(self) -> None:
        """Nothing held, nothing owed: every block back in the pool."""
        s = self.scheduler
        expect(not s.loading, f"loads never reported finished: {sorted(s.loading)}")
        expect(not s.holding, f"saves never reported finished: {sorted(s.holding)}")
        expect(s.pool.num_used_blocks == 0, f"{s.pool.num_used_blocks} GPU blocks still allocated: {self.describe()}")

    def describe(self) -> str:
        s = self.scheduler
        return (f"step {s.step_index}; waiting={[repr(r) for r in s.waiting]} running={[repr(r) for r in s.running]} "
                f"held={sorted(s.held_request_ids())} loading={sorted(s.loading)} holding={sorted(s.holding)} "
                f"free_blocks={s.pool.num_free_blocks}")

    # ---- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """EngineCore.shutdown(): the executor's workers, then the scheduler (2026 vLLM calls
        the scheduler connector's shutdown too)."""
        if self._closed:
            return
        self._closed = True
        for w in self.workers:
            if w.connector is not None:
                with w.as_rank():
                    w.connector.shutdown()
        if self.connector is not None:
            self.connector.shutdown()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _poison(self, block_ids: list[int]) -> None:
        for w in self.workers:
            w.poison(block_ids)

    def _fill_local_hit(self, request: Request, block_ids: list[int], num_tokens: int) -> None:
        for w in self.workers:
            with w.as_rank():
                w.fill_expected(request.request_id, request.all_token_ids, block_ids, num_tokens)


def prompt(n: int, start: int = 1000) -> list[int]:
    """``n`` distinct token ids from ``start``; two prompts share a prefix iff their ranges overlap at the start."""
    return list(range(start, start + n))


def reference_outputs(tokens: Sequence[int], n: int) -> list[int]:
    """The ``n`` tokens the fake model generates after ``tokens`` (greedy, KV-independent)."""
    out, seq = [], list(tokens)
    for _ in range(n):
        t = next_token(prefix_seeds(seq)[-1])
        out.append(t)
        seq.append(t)
    return out
