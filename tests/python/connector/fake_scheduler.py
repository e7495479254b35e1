"""vLLM's v1 scheduler as far as a KV connector can tell: ``schedule()`` and
``update_from_output()`` call the SCHEDULER connector in vLLM's order, with vLLM's state
machine (``WAITING_FOR_REMOTE_KVS``, delayed free, preemption, aborts, load errors).

With ``scheduler_config.async_scheduling`` it is vLLM's ``AsyncScheduler``: a step reaching the
end of a request's known tokens adds an output placeholder (the token is sampled on the GPU and
only known when that step's output is processed), and the engine runs it with a batch queue
(harness.Engine): step k+1 is scheduled and executed before step k's output is processed.

Simplifications: FCFS only; no GPU prefix cache (a test may simulate a local hit with
``local_hit_fn``); no speculative decoding, encoder inputs or pipeline parallelism; a preempted
request's in-flight outputs are discarded (as vLLM does for ``reset_prefix_cache``). Besides vLLM's own assertions it checks the contract the spec states and raises
:class:`ConnectorContractError` naming the rule.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorMetadata, supports_hma
from vllm.v1.core.kv_cache_manager import KVCacheBlocks
from vllm.v1.core.sched.output import CachedRequestData, NewRequestData, SchedulerOutput
from vllm.v1.engine import FinishReason
from vllm.v1.outputs import KVConnectorOutput, ModelRunnerOutput
from vllm.v1.request import Request, RequestStatus

from .block_pool import BlockPool
from .contract import ConnectorContractError, expect
from .load_errors import truncate_at_invalid

W = RequestStatus


@dataclass
class EngineCoreOutput:
    """What one request produced in a step (vLLM's EngineCoreOutput, the fields tests need)."""

    req_id: str
    new_token_ids: list[int]
    finish_reason: Optional[FinishReason] = None
    kv_transfer_params: Optional[dict] = None
    num_cached_tokens: int = 0


class FakeScheduler:
    def __init__(self, vllm_config, connector: Any, num_gpu_blocks: int, *, blocks_arg: str = "all",
                 take_events_in: str = "update_from_output", check_alignment: bool = True) -> None:
        sc, ktc = vllm_config.scheduler_config, vllm_config.kv_transfer_config
        self.vllm_config = vllm_config
        self.connector = connector
        self.block_size = vllm_config.cache_config.block_size
        self.max_num_batched_tokens = sc.max_num_batched_tokens
        self.max_num_seqs = sc.max_num_seqs
        self.chunked_prefill = sc.enable_chunked_prefill
        self.async_scheduling = bool(getattr(sc, "async_scheduling", False))
        self.recompute_kv_load_failures = ktc is None or ktc.kv_load_failure_policy == "recompute"
        # "all": 2026 passes every block of the request to update_state_after_alloc; "new":
        # vLLM <= ~0.11 passed local-hit + newly allocated blocks (newer: all of the request's).
        assert blocks_arg in ("all", "new")
        self.blocks_arg = blocks_arg
        # 2026 drains connector events in update_from_output, ~0.10-0.11 in schedule().
        assert take_events_in in ("update_from_output", "schedule")
        self.take_events_in = take_events_in
        # Harness rule (the spec's advice, not a vLLM assertion): a hit ends on a block
        # boundary or at the end of the prompt.
        self.check_alignment = check_alignment
        self.pool = BlockPool(num_gpu_blocks, self.block_size)

        self.requests: dict[str, Request] = {}
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.finished_req_ids: set[str] = set()
        self.finished_recving_kv_req_ids: set[str] = set()
        self.failed_recving_kv_req_ids: set[str] = set()
        self._prev_scheduled: set[str] = set()
        self._stale_tokens: set[str] = set()  # the worker must be sent these requests' token lists

        # Contract bookkeeping: what the connector owes vLLM.
        self.loading: set[str] = set()  # async loads in flight: one finished_recving each
        self.holding: set[str] = set()  # request_finished returned True: one finished_sending each
        self._finished_called: set[str] = set()
        self._to_preempt: list[str] = []

        # Test hooks. local_hit_fn(request) -> tokens found in vLLM's own prefix cache;
        # on_local_hit(request, block_ids, num_tokens) must make those blocks hold that KV.
        self.local_hit_fn: Optional[Callable[[Request], int]] = None
        self.on_local_hit: Optional[Callable[[Request, list[int], int], None]] = None

        # Observations for tests.
        self.step_index = 0
        self.finished: dict[str, Request] = {}
        self.kv_events: list[Any] = []
        self.stats_history: list[Any] = []
        self.ignored_invalid_block_ids: set[int] = set()
        self.connector_output_calls = 0

        if connector is not None and hasattr(connector, "bind_gpu_block_pool"):
            connector.bind_gpu_block_pool(self.pool)

    # ---- requests in and out ------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        assert request.request_id not in self.requests, f"duplicate request id {request.request_id}"
        self.requests[request.request_id] = request
        self.waiting.append(request)
        if self.connector is not None and hasattr(self.connector, "on_new_request"):
            self.connector.on_new_request(request)

    def finish_requests(self, request_ids: str | Iterable[str], finished_status: RequestStatus) -> None:
        """Aborts (client abort, stop string) and errors: frees through request_finished."""
        assert RequestStatus.is_finished(finished_status)
        ids = (request_ids,) if isinstance(request_ids, str) else set(request_ids)
        valid = []
        for rid in ids:
            req = self.requests.get(rid)
            if req is None or req.is_finished():
                continue
            valid.append(req)
            if req.status == W.RUNNING:
                self.running.remove(req)
            else:
                self.waiting.remove(req)
        for req in valid:
            delay = False
            if req.status == W.WAITING_FOR_REMOTE_KVS:
                # The load may still write into the blocks: held until finished_recving.
                delay = req.request_id not in self.finished_recving_kv_req_ids
                self.finished_recving_kv_req_ids.discard(req.request_id)
                self.failed_recving_kv_req_ids.discard(req.request_id)
            req.status = finished_status
            self._free_request(req, delay_free_blocks=delay)

    def preempt(self, req_id: str) -> None:
        """Test hook: preempt this running request at the next ``schedule()``, as if it ran
        out of blocks (vLLM itself preempts only then; a small pool does that naturally)."""
        self._to_preempt.append(req_id)

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def has_finished_requests(self) -> bool:
        return bool(self.finished_req_ids)

    def has_requests(self) -> bool:
        # Requests whose blocks are held after request_finished returned True count as
        # neither: the engine goes idle with their blocks still held.
        return self.has_unfinished_requests() or self.has_finished_requests()

    def held_request_ids(self) -> set[str]:
        return {rid for rid, r in self.requests.items() if r.is_finished()}

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        if reset_running_requests:
            while self.running:
                # Not reported in any preempted_req_ids (as in vLLM); the worker flushes them.
                # In-flight outputs are discarded when they return (async_tokens_to_discard).
                self._preempt_request(self.running.pop())
            self._prev_scheduled.clear()
        ok = self.pool.reset_prefix_cache()
        if reset_running_requests and not ok:
            raise RuntimeError("Failed to reset KV cache even when all the running requests are preempted")
        if reset_connector:
            ok = self.reset_connector_cache() and ok
        return ok

    def reset_connector_cache(self) -> bool:
        if self.connector is None:
            return False
        return self.connector.reset_cache() is not False

    # ---- schedule() ---------------------------------------------------------------------

    def schedule(self) -> SchedulerOutput:
        self.step_index += 1
        budget = self.max_num_batched_tokens
        num_scheduled: dict[str, int] = {}
        new_reqs: list[Request] = []
        resumed: list[Request] = []
        running_sched: list[Request] = []
        new_block_ids: dict[str, Optional[tuple[list[int], ...]]] = {}
        preempted: list[Request] = []

        for rid in self._to_preempt:
            req = self.requests.get(rid)
            if req is not None and req.status == W.RUNNING:
                self.running.remove(req)
                self._preempt_request(req)
                preempted.append(req)
        self._to_preempt = []

        # 1. Running requests first; preempt from the tail when blocks run out.
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            if req.num_output_placeholders > 0 and \
                    req.num_computed_tokens + 2 - req.num_output_placeholders >= req.num_prompt_tokens + req.max_tokens:
                i += 1  # async: the step in flight already reaches max_tokens
                continue
            n = min(req.num_tokens_with_spec + req.num_output_placeholders - req.num_computed_tokens, budget)
            if n <= 0:
                i += 1
                continue
            while True:
                blocks = self.pool.allocate_slots(req.request_id, req.num_computed_tokens + n)
                if blocks is not None:
                    break
                victim = self.running.pop()
                self._preempt_request(victim)
                preempted.append(victim)
                if victim is req:
                    break
            if blocks is None:
                break
            running_sched.append(req)
            ids = blocks.get_block_ids()
            new_block_ids[req.request_id] = ids if ids[0] else None
            num_scheduled[req.request_id] = n
            budget -= n
            i += 1

        # 2. Waiting queue, only when nothing was preempted in this step.
        if not preempted:
            budget = self._schedule_waiting(budget, num_scheduled, new_reqs, resumed)

        # 3. The output, then the connector's metadata for it.
        cached = CachedRequestData()
        for req in running_sched + resumed:
            rid = req.request_id
            cached.req_ids.append(rid)
            if req in resumed:
                cached.resumed_req_ids.add(rid)
                cached.new_block_ids.append(self.pool.get_blocks(rid).get_block_ids())
            else:
                cached.new_block_ids.append(new_block_ids[rid])
            if req in resumed or rid not in self._prev_scheduled or rid in self._stale_tokens:
                cached.all_token_ids[rid] = list(req.all_token_ids)
            cached.num_computed_tokens.append(req.num_computed_tokens)
            cached.num_output_tokens.append(req.num_output_tokens)
        self._stale_tokens -= set(cached.req_ids)
        so = SchedulerOutput(
            scheduled_new_reqs=[NewRequestData.from_request(r, self.pool.get_blocks(r.request_id).get_block_ids())
                                for r in new_reqs],
            scheduled_cached_reqs=cached,
            num_scheduled_tokens=num_scheduled,
            total_num_scheduled_tokens=sum(num_scheduled.values()),
            finished_req_ids=self.finished_req_ids,
            preempted_req_ids={r.request_id for r in preempted},
        )
        if self.connector is not None:
            before = _snapshot(so)
            meta = self.connector.build_connector_meta(so)
            expect(_snapshot(so) == before, "build_connector_meta must not modify the SchedulerOutput")
            expect(isinstance(meta, KVConnectorMetadata),
                   f"build_connector_meta must return a KVConnectorMetadata, got {type(meta).__name__}")
            try:
                pickle.dumps(meta)
            except Exception as e:  # workers in other processes get it pickled
                raise ConnectorContractError(f"connector metadata must be picklable: {e}") from e
            so.kv_connector_metadata = meta
            if self.take_events_in == "schedule":
                self.kv_events.extend(self.connector.take_events() or ())

        # _update_after_schedule: computed tokens advance at schedule time; under async
        # scheduling a step that reaches the end of the known tokens owes one sampled token.
        for rid, n in num_scheduled.items():
            req = self.requests[rid]
            req.num_computed_tokens += n
            if self.async_scheduling and req.num_computed_tokens >= req.num_tokens + req.num_output_placeholders:
                req.num_output_placeholders += 1
        self._prev_scheduled = set(num_scheduled)
        self.finished_req_ids = set()
        return so

    def _schedule_waiting(self, budget: int, num_scheduled: dict, new_reqs: list, resumed: list) -> int:
        skipped: deque[Request] = deque()
        bs = self.block_size
        while self.waiting and budget > 0:
            if len(self.running) == self.max_num_seqs:
                break
            req = self.waiting[0]
            if req.status == W.WAITING_FOR_REMOTE_KVS:
                if not self._update_waiting_for_remote_kv(req):
                    skipped.appendleft(self.waiting.popleft())
                    continue
                req.status = W.PREEMPTED if req.num_preemptions else W.WAITING

            local = ext = 0
            load_async = False
            if req.num_computed_tokens == 0:
                local = self._local_hit(req)
                if self.connector is not None:
                    ext, load_async = self._ask_connector(req, local)
                    if ext is None:  # "ask me again later": retried next step
                        skipped.appendleft(self.waiting.popleft())
                        continue
                    req.num_external_computed_tokens = ext
                computed = local + ext
            else:
                computed = req.num_computed_tokens

            if load_async:
                expect(ext > 0, "load_kv_async=True requires num_external_tokens > 0 (vLLM asserts it)")
                n_new = 0
            else:
                n_new = req.num_tokens - computed
                if not self.chunked_prefill and n_new > budget:
                    break
                n_new = min(n_new, budget)
                expect(n_new > 0, f"request {req.request_id}: num_computed_tokens + external ({computed}) must leave "
                                  f"at least one of {req.num_tokens} tokens to compute for a synchronous load")

            had = self.pool.block_ids(req.request_id)
            blocks = self.pool.allocate_slots(req.request_id, computed + n_new)
            if blocks is None:
                break  # stays waiting; the lookup is repeated next time
            if local and not had and self.on_local_hit is not None:
                self.on_local_hit(req, self.pool.block_ids(req.request_id)[: local // bs], local)
            if self.connector is not None:
                arg = self.pool.get_blocks(req.request_id)
                if self.blocks_arg == "new":
                    arg = KVCacheBlocks((tuple(arg.blocks[0][: local // bs]) + tuple(blocks.blocks[0]),)) \
                        if not had else blocks
                self.connector.update_state_after_alloc(req, arg, ext)

            self.waiting.popleft()
            if load_async:
                req.status = W.WAITING_FOR_REMOTE_KVS
                # Set now (newest vLLM) though unused until the load ends; load errors truncate it.
                req.num_computed_tokens = computed
                self.loading.add(req.request_id)
                skipped.appendleft(req)
                continue
            self.running.append(req)
            (new_reqs if req.status == W.WAITING else resumed).append(req)
            num_scheduled[req.request_id] = n_new
            budget -= n_new
            req.status = W.RUNNING
            req.num_computed_tokens = computed
            if req.num_cached_tokens < 0:
                req.num_cached_tokens = computed
        self.waiting.extendleft(skipped)
        return budget

    def _local_hit(self, req: Request) -> int:
        if self.local_hit_fn is None:
            return 0
        n = int(self.local_hit_fn(req))
        bs = self.block_size
        # vLLM's cache never covers the whole prompt: the last token is always computed.
        return min(n // bs * bs, (req.num_tokens - 1) // bs * bs)

    def _ask_connector(self, req: Request, local: int) -> tuple[Optional[int], bool]:
        got = self.connector.get_num_new_matched_tokens(req, local)
        expect(isinstance(got, tuple) and len(got) == 2,
               f"get_num_new_matched_tokens must return (int | None, bool), got {got!r}")
        ext, load_async = got
        if ext is None:
            return None, False
        expect(isinstance(ext, int) and not isinstance(ext, bool) and ext >= 0,
               f"get_num_new_matched_tokens: bad token count {ext!r}")
        expect(isinstance(load_async, bool), f"get_num_new_matched_tokens: load_kv_async must be a bool, got {load_async!r}")
        expect(not (load_async and ext == 0), "load_kv_async=True with 0 tokens (vLLM asserts n > 0)")
        expect(local + ext <= req.num_tokens,
               f"{req.request_id}: {ext} external tokens beyond {local} local exceed the request's {req.num_tokens} tokens")
        if self.check_alignment and ext:
            end = local + ext
            expect(end % self.block_size == 0 or end == req.num_tokens,
                   f"{req.request_id}: a hit must end on a block boundary or at the end of the prompt (got {end} "
                   f"of {req.num_tokens} tokens, block size {self.block_size})")
        return ext, load_async

    def _update_waiting_for_remote_kv(self, req: Request) -> bool:
        rid = req.request_id
        if rid not in self.finished_recving_kv_req_ids:
            return False
        if rid in self.failed_recving_kv_req_ids:
            # num_computed_tokens was already truncated to the valid prefix.
            if not req.num_computed_tokens:
                self.pool.free(rid)
            self.failed_recving_kv_req_ids.discard(rid)
        else:
            n = min(len(self.pool.block_ids(rid)) * self.block_size, req.num_tokens)
            if n == req.num_tokens:
                n -= 1  # the last token is always recomputed to get logits
            req.num_computed_tokens = n
        self.finished_recving_kv_req_ids.discard(rid)
        return True

    def _preempt_request(self, req: Request) -> None:
        assert req.status == W.RUNNING, "only running requests can be preempted"
        # Outputs of steps in flight belong to the blocks just freed: dropped when they return.
        req.async_tokens_to_discard = getattr(req, "async_tokens_to_discard", 0) + req.num_output_placeholders
        req.num_output_placeholders = 0
        self.pool.free(req.request_id)
        req.status = W.PREEMPTED
        req.num_computed_tokens = 0
        req.spec_token_ids = []
        req.num_preemptions += 1
        self.waiting.appendleft(req)

    # ---- update_from_output() -----------------------------------------------------------

    def update_from_output(self, so: SchedulerOutput, mro: ModelRunnerOutput) -> list[EngineCoreOutput]:
        kv_out: Optional[KVConnectorOutput] = mro.kv_connector_output
        outputs: list[EngineCoreOutput] = []

        stats = kv_out.kv_connector_stats if kv_out else None
        if stats and self.connector is not None:
            sched_stats = self.connector.get_kv_connector_stats()
            if sched_stats:
                stats = stats.aggregate(sched_stats)
        if stats:
            self.stats_history.append(stats)

        failed_ids: set[str] = set()
        if kv_out is not None and kv_out.invalid_block_ids:
            failed_ids = self._handle_invalid_blocks(set(kv_out.invalid_block_ids))

        bad_reads = getattr(mro, "harness_bad_reads", {})
        for rid, msg in bad_reads.items():
            req = self.requests.get(rid)
            kept = rid not in failed_ids and req is not None and not req.is_finished() and \
                not getattr(req, "async_tokens_to_discard", 0)
            expect(not kept, f"{msg}, and vLLM keeps that step's output (the load was reported done, or its "
                             "failed block ids reached vLLM too late): the bytes are not what the model wrote "
                             "for this prefix")

        stopped: list[Request] = []
        for rid, n in so.num_scheduled_tokens.items():
            assert n > 0
            if rid in failed_ids:
                # Computed with bad KV: its output is dropped; "recompute" reschedules it from
                # the truncated point, "fail" finishes it below.
                self._stale_tokens.add(rid)
                req = self.requests.get(rid)
                if req is not None and req.num_output_placeholders:
                    req.num_output_placeholders -= 1  # this step's frame is consumed
                continue
            req = self.requests.get(rid)
            if req is None or req.is_finished():
                continue  # aborted during the step
            if getattr(req, "async_tokens_to_discard", 0):
                req.async_tokens_to_discard -= 1  # a frame from before a preemption or reset
                continue
            sampled = mro.sampled_token_ids[mro.req_id_to_index[rid]] if mro.sampled_token_ids else []
            new_tokens = []
            for tok in sampled:
                req.append_output_token_ids(tok)
                new_tokens.append(tok)
                if self._check_stop(req, tok):
                    break
            if self.async_scheduling and sampled:
                req.num_output_placeholders = max(0, req.num_output_placeholders - len(sampled))
            params = None
            if req.is_finished():
                stopped.append(req)
                params = self._free_request(req)
            if new_tokens or params:
                outputs.append(EngineCoreOutput(rid, new_tokens, req.get_finished_reason(), params,
                                                req.num_cached_tokens))
        for req in stopped:
            if req in self.running:
                self.running.remove(req)
            elif req in self.waiting:
                self.waiting.remove(req)

        if failed_ids and not self.recompute_kv_load_failures:
            self.finish_requests(failed_ids, W.FINISHED_ERROR)
            outputs.extend(EngineCoreOutput(r, [], FinishReason.ERROR) for r in failed_ids)

        if kv_out is not None:
            self._update_from_kv_xfer_finished(kv_out)

        if self.connector is not None and self.take_events_in == "update_from_output":
            self.kv_events.extend(self.connector.take_events() or ())
        return outputs

    def _check_stop(self, req: Request, tok: int) -> bool:
        if req.eos_token_id is not None and tok == req.eos_token_id:
            req.status = W.FINISHED_STOPPED
        elif req.num_output_tokens >= req.max_tokens:
            req.status = getattr(req, "finish_status", W.FINISHED_LENGTH_CAPPED)
        return req.is_finished()

    def _handle_invalid_blocks(self, invalid: set[int]) -> set[str]:
        """Truncates requests whose externally computed blocks failed to load.
        Returns the running (sync-loaded) requests to skip in this step's output."""
        known = set()
        for r in self.requests.values():
            known.update(self.pool.block_ids(r.request_id))
        self.ignored_invalid_block_ids |= invalid - known
        waiting_async = [r for r in self.waiting if r.status == W.WAITING_FOR_REMOTE_KVS]
        async_ids = truncate_at_invalid(waiting_async, invalid, self.pool.block_ids, self.block_size)
        sync_ids = truncate_at_invalid(self.running, invalid, self.pool.block_ids, self.block_size)
        if self.recompute_kv_load_failures:
            self.failed_recving_kv_req_ids |= async_ids
            return sync_ids
        return async_ids | sync_ids

    def _update_from_kv_xfer_finished(self, kv_out: KVConnectorOutput) -> None:
        if self.connector is not None:
            self.connector_output_calls += 1
            self.connector.update_connector_output(kv_out)
        for rid in kv_out.finished_recving or ():
            expect(rid in self.requests, f"finished_recving reports unknown request {rid!r} (vLLM asserts)")
            expect(rid in self.loading, f"finished_recving reports {rid!r}, which has no async load in flight "
                                        "(never loading, or reported twice)")
            self.loading.discard(rid)
            req = self.requests[rid]
            if req.status == W.WAITING_FOR_REMOTE_KVS:
                self.finished_recving_kv_req_ids.add(rid)
            else:
                assert req.is_finished(), f"{rid} got finished_recving while {req.status.name}"
                self._free_blocks(req)  # aborted while loading: its blocks are released now
        for rid in kv_out.finished_sending or ():
            expect(rid in self.holding, f"finished_sending reports {rid!r}, for which request_finished did not "
                                        "return True (or reported twice)")
            self.holding.discard(rid)
            expect(rid in self.requests, f"finished_sending reports {rid!r}, which vLLM already forgot "
                                         "(its blocks were freed by finished_recving after an abort)")
            self._free_blocks(self.requests[rid])

    # ---- freeing --------------------------------------------------------------------------

    def _free_request(self, req: Request, delay_free_blocks: bool = False) -> Optional[dict]:
        assert req.is_finished()
        delay, params = self._connector_finished(req)
        self.finished_req_ids.add(req.request_id)
        self.finished[req.request_id] = req
        if not (delay or delay_free_blocks):
            self._free_blocks(req)
        return params

    def _connector_finished(self, req: Request) -> tuple[bool, Optional[dict]]:
        if self.connector is None:
            return False, None
        rid = req.request_id
        expect(rid not in self._finished_called, f"request_finished called twice for {rid} (harness bug)")
        self._finished_called.add(rid)
        if supports_hma(self.connector):
            got = self.connector.request_finished_all_groups(req, self.pool.get_blocks(rid).get_block_ids())
        else:
            got = self.connector.request_finished(req, self.pool.block_ids(rid))
        expect(isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], bool)
               and (got[1] is None or isinstance(got[1], dict)),
               f"request_finished must return (bool, dict | None), got {got!r}")
        if got[0]:
            self.holding.add(rid)
        return got

    def _free_blocks(self, req: Request) -> None:
        assert req.is_finished()
        self.pool.free(req.request_id)
        del self.requests[req.request_id]


def _snapshot(so: SchedulerOutput) -> str:
    """Everything but the metadata, to detect edits by build_connector_meta."""
    return repr(dataclasses.replace(so, kv_connector_metadata=None))
