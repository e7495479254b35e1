"""One vLLM worker (GPU model runner + ``KVConnectorModelRunnerMixin``) whose "GPU"
KV cache is a set of CPU tensors in one of vLLM's layouts and whose "model" writes KV that is a
pure function of the token prefix (kv_model.py).

Per step it calls the WORKER connector exactly in the mixin's order, and in each attention
layer it first checks that every token the layer is about to read (positions before the
request's ``num_computed_tokens``) holds the right KV, right after ``wait_for_layer_load``: a
connector that loaded the wrong bytes, loaded late, or wrote into another request's blocks
fails here. Reads of blocks the connector reports in ``get_block_ids_with_load_errors`` in the
same step are excused only if vLLM discards that request's output of the step: the worker
attaches the reads it saw to its output (``harness_bad_reads``) and the scheduler raises when
it would keep an output computed from them (under async scheduling a step already in flight
when the errors arrive is not discarded).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch

from vllm.distributed import kv_transfer, parallel_state
from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.outputs import KVConnectorOutput, ModelRunnerOutput

from .contract import expect
from .kv_layouts import LAYOUTS, copy_kv_blocks
from .kv_model import POISON, extend_seeds, kv_values, next_token, prefix_seeds


@dataclass
class _ReqState:
    tokens: list[int]
    block_ids: list[int]
    num_computed: int = 0
    seeds: list[int] = field(default_factory=list)
    verified_upto: int = 0  # positions below this were checked since the blocks were assigned
    own: set[int] = field(default_factory=set)  # positions this worker (or a local hit) wrote


@dataclass
class FakeAttentionMetadata:
    """What ``save_kv_layer`` gets as ``attn_metadata``: where this step's tokens are written."""

    req_ids: list[str]
    slot_mapping: torch.Tensor  # block_id * block_size + offset per scheduled token
    query_start_loc: list[int]
    seq_lens: list[int]
    block_table: list[list[int]]


class FakeWorker:
    def __init__(self, vllm_config, connector: Any, num_gpu_blocks: int, layout: str = "kv_first", rank: int = 0, *,
                 poison: bool = True, check_reads: bool = True, write_kv: bool = True,
                 preemption_api: Optional[str] = "metadata",
                 no_forward_rule: str = "is_empty", wait_for_save_without_forward: bool = False) -> None:
        mc, pc, cc = vllm_config.model_config, vllm_config.parallel_config, vllm_config.cache_config
        self.connector, self.rank, self.tp_size = connector, rank, pc.tensor_parallel_size
        self.layout = LAYOUTS[layout]
        assert (layout == "mla") == bool(mc.use_mla), "layout 'mla' goes with model_config.use_mla=True"
        self.block_size = cc.block_size
        self.num_gpu_blocks = num_gpu_blocks
        self.dtype = mc.dtype
        heads, head_size = mc.get_num_kv_heads(pc), mc.get_head_size()
        shape = self.layout.shape(num_gpu_blocks, self.block_size, heads, head_size)
        self.layer_names = [f"model.layers.{i}.self_attn.attn" for i in range(mc.get_num_layers(pc))]
        # Unwritten memory holds POISON so that reading a slot nobody filled never passes.
        self.kv_caches = {n: torch.full(shape, POISON if poison else 0.0, dtype=self.dtype) for n in self.layer_names}
        self._views = {n: self.layout.token_view(t) for n, t in self.kv_caches.items()}
        self.slot_shape = tuple(next(iter(self._views.values())).shape[2:])
        self.poison_on_alloc, self.check_reads = poison, check_reads
        # write_kv=False: the "model" writes no KV at all (benchmarks of the connector's own
        # cost: vLLM's model runs on the GPU and leaves the host's caches alone; this one would
        # stream megabytes through them every step). Implies nothing can be checked.
        self.write_kv = write_kv
        assert write_kv or not check_reads, "check_reads needs write_kv"
        # "metadata": 2026 handle_preemptions(metadata) every step; "set": ~0.13-0.18, only when
        # something was preempted; None: older vLLM, never called.
        assert preemption_api in ("metadata", "set", None)
        self.preemption_api = preemption_api
        # No-forward steps: "is_empty" (0.11-2026) drops an is_empty() output,
        # "finished_only" (0.10.1) drops it when both finished sets are empty, "always" keeps it.
        assert no_forward_rule in ("is_empty", "finished_only", "always")
        self.no_forward_rule = no_forward_rule
        self.wait_for_save_without_forward = wait_for_save_without_forward

        self.requests: dict[str, _ReqState] = {}
        self._prefilled: dict[str, set[int]] = {}
        self._given_finished: set[str] = set()
        self.loaded_tokens_verified: dict[str, int] = defaultdict(int)
        self.steps = 0
        if connector is not None:
            with self.as_rank():
                connector.register_kv_caches(self.kv_caches)
                if hasattr(connector, "set_host_xfer_buffer_ops"):
                    connector.set_host_xfer_buffer_ops(copy_kv_blocks(self.layout))

    @contextlib.contextmanager
    def as_rank(self):
        """Make vllm.distributed.parallel_state answer as this worker's process would."""
        tp = parallel_state.get_tp_group()
        saved = (tp.rank_in_group, tp.world_size, parallel_state.get_world_group().local_rank)
        parallel_state.set_rank(self.rank, self.tp_size)
        prev = kv_transfer.set_kv_transfer_group(self.connector)
        try:
            yield
        finally:
            kv_transfer.set_kv_transfer_group(prev)
            parallel_state.set_rank(saved[0], saved[1], saved[2])

    # ---- memory helpers the harness uses ---------------------------------------------------

    def poison(self, block_ids: Sequence[int]) -> None:
        """Freshly allocated blocks: whatever an earlier owner left there must not count."""
        if not self.poison_on_alloc or not block_ids:
            return
        idx = torch.tensor(list(block_ids), dtype=torch.long)
        for t in self.kv_caches.values():
            t.index_fill_(self.layout.block_dim, idx, POISON)

    def fill_expected(self, req_id: str, tokens: Sequence[int], block_ids: Sequence[int], num_tokens: int) -> None:
        """Simulates a hit in vLLM's own GPU prefix cache: these blocks already hold the KV."""
        self._write_range(tokens, prefix_seeds(tokens[:num_tokens]), block_ids, 0, num_tokens)
        self._prefilled[req_id] = set(range(num_tokens))

    def block_bytes(self, layer: str, block_id: int) -> torch.Tensor:
        return self.layout.block_view(self.kv_caches[layer], block_id)

    def verify_request_blocks(self, request: Any, block_ids: Optional[Sequence[int]] = None,
                              num_tokens: Optional[int] = None) -> int:
        """Checks that positions [0, num_tokens) (default: the request's full blocks within
        its computed prefix) of ``request`` hold the expected KV in every layer, in
        ``block_ids`` (default: the blocks this worker was last told the request has).
        Returns the number of full blocks checked; raises ConnectorContractError naming the
        first bad one."""
        bs = self.block_size
        if block_ids is None:
            block_ids = self.requests[request.request_id].block_ids
        n = num_tokens if num_tokens is not None else request.num_computed_tokens // bs * bs
        tokens = list(request.all_token_ids)
        seeds = prefix_seeds(tokens[:n])
        with self.as_rank():
            for li, name in enumerate(self.layer_names):
                bad = self._mismatches(li, name, seeds, block_ids, 0, n)
                expect(not bad, f"{request.request_id}: layer {name} token {bad[:1]} (block "
                                f"{block_ids[bad[0] // bs] if bad else None}) does not hold the expected KV")
        return n // bs

    # ---- one step -------------------------------------------------------------------------

    def execute_model(self, so: SchedulerOutput) -> ModelRunnerOutput:
        self.steps += 1
        with self.as_rank():
            self._update_states(so)
            c = self.connector
            if c is not None:
                self._handle_preemptions(so)
            if so.total_num_scheduled_tokens == 0:
                return self._no_forward(so)
            if c is not None:
                c.bind_connector_metadata(so.kv_connector_metadata)
                c.start_load_kv(None)
            sched = [(rid, self.requests[rid], self.requests[rid].num_computed, n)
                     for rid, n in so.num_scheduled_tokens.items()]
            meta = self._attn_metadata(sched)
            hooks = c is not None and getattr(c, "has_connector_metadata", lambda: True)()
            bad_reads: list[tuple[str, str, int, int]] = []
            for li, name in enumerate(self.layer_names):
                if hooks:
                    c.wait_for_layer_load(name)
                for rid, st, nc, n in sched:
                    if self.check_reads:
                        for p in self._mismatches(li, name, st.seeds, st.block_ids, st.verified_upto, nc,
                                                  tokens=st.tokens)[:1]:
                            bad_reads.append((rid, name, p, st.block_ids[p // self.block_size]))
                    if self.write_kv:
                        self._write_range(st.tokens, st.seeds, st.block_ids, nc, nc + n, layer=li)
                    else:
                        extend_seeds(st.seeds, st.tokens, nc + n)  # what the next token depends on
                if hooks:
                    c.save_kv_layer(name, self.kv_caches[name], meta)
            sampled = self._finish_forward(sched)
            kv_out = None
            if c is not None:
                c.wait_for_save()
                kv_out = self._collect(so)
            mro = ModelRunnerOutput(req_ids=[s[0] for s in sched], req_id_to_index={s[0]: i for i, s in enumerate(sched)},
                                    sampled_token_ids=sampled, kv_connector_output=kv_out)
            # Harness-only: which requests computed this step from KV the model never wrote. The
            # scheduler decides whether vLLM would discard those outputs (FakeScheduler.update_from_output).
            mro.harness_bad_reads = {}
            for rid, name, p, blk in bad_reads:
                mro.harness_bad_reads.setdefault(rid, f"worker {self.rank} step {self.steps}: request {rid} read wrong "
                                                      f"KV in {name} at token {p} (block {blk})")
            return mro

    def _update_states(self, so: SchedulerOutput) -> None:
        self._given_finished |= so.finished_req_ids
        for rid in so.finished_req_ids:
            self.requests.pop(rid, None)
        for nr in so.scheduled_new_reqs:
            st = _ReqState(tokens=list(nr.prompt_token_ids), block_ids=list(nr.block_ids[0]),
                           num_computed=nr.num_computed_tokens)
            st.own = self._prefilled.pop(nr.req_id, set())
            self.requests[nr.req_id] = st
        cr = so.scheduled_cached_reqs
        for i, rid in enumerate(cr.req_ids):
            st = self.requests[rid]
            if rid in cr.all_token_ids:
                st.tokens = list(cr.all_token_ids[rid])
                del st.seeds[len(st.tokens):]
            nb = cr.new_block_ids[i]
            if rid in cr.resumed_req_ids:
                st.block_ids, st.verified_upto = list(nb[0]), 0
                st.own = self._prefilled.pop(rid, set())
            elif nb is not None:
                st.block_ids.extend(nb[0])
            st.num_computed = cr.num_computed_tokens[i]
            st.verified_upto = min(st.verified_upto, st.num_computed)

    def _handle_preemptions(self, so: SchedulerOutput) -> None:
        if self.preemption_api == "metadata":
            self.connector.handle_preemptions(so.kv_connector_metadata)
        elif self.preemption_api == "set" and so.preempted_req_ids:
            self.connector.handle_preemptions(set(so.preempted_req_ids))

    def _no_forward(self, so: SchedulerOutput) -> ModelRunnerOutput:
        c = self.connector
        if c is None:
            return ModelRunnerOutput()  # EMPTY_MODEL_RUNNER_OUTPUT
        c.bind_connector_metadata(so.kv_connector_metadata)
        c.start_load_kv(None)
        if self.wait_for_save_without_forward:
            c.wait_for_save()
        out = self._collect(so)
        drop = {"is_empty": out.is_empty(), "finished_only": not out.finished_sending and not out.finished_recving,
                "always": False}[self.no_forward_rule]
        return ModelRunnerOutput(kv_connector_output=None if drop else out)

    def _collect(self, so: SchedulerOutput) -> KVConnectorOutput:
        c = self.connector
        got = c.get_finished(so.finished_req_ids)
        expect(isinstance(got, tuple) and len(got) == 2, f"get_finished must return a 2-tuple, got {got!r}")
        sending, recving = got
        for rid in sending or ():
            expect(rid in self._given_finished, f"worker {self.rank}: finished_sending reports {rid!r} before "
                                                "get_finished was given it in finished_req_ids")
        invalid = c.get_block_ids_with_load_errors() if hasattr(c, "get_block_ids_with_load_errors") else set()
        stats = c.get_kv_connector_stats() if hasattr(c, "get_kv_connector_stats") else None
        events = c.get_kv_connector_kv_cache_events() if hasattr(c, "get_kv_connector_kv_cache_events") else None
        wmeta = c.build_connector_worker_meta() if hasattr(c, "build_connector_worker_meta") else None
        c.clear_connector_metadata()
        return KVConnectorOutput(finished_sending=set(sending) if sending else sending,
                                 finished_recving=set(recving) if recving else recving,
                                 kv_connector_stats=stats, invalid_block_ids=set(invalid or ()),
                                 kv_cache_events=events, kv_connector_worker_meta=wmeta)

    def _finish_forward(self, sched) -> list[list[int]]:
        sampled = []
        for rid, st, nc, n in sched:
            checked = range(st.verified_upto, nc)
            self.loaded_tokens_verified[rid] += sum(1 for p in checked if p not in st.own) if self.check_reads else 0
            st.verified_upto = nc
            st.own.update(range(nc, nc + n))
            if nc + n == len(st.tokens):  # reached the end: sample (a partial prefill chunk does not)
                tok = next_token(st.seeds[-1])
                st.tokens.append(tok)
                sampled.append([tok])
            else:
                sampled.append([])
        return sampled

    def _attn_metadata(self, sched) -> FakeAttentionMetadata:
        bs, slots, qsl, lens = self.block_size, [], [0], []
        for rid, st, nc, n in sched:
            slots += [st.block_ids[p // bs] * bs + p % bs for p in range(nc, nc + n)]
            qsl.append(qsl[-1] + n)
            lens.append(nc + n)
        return FakeAttentionMetadata([s[0] for s in sched], torch.tensor(slots, dtype=torch.long), qsl, lens,
                                     [list(s[1].block_ids) for s in sched])

    # ---- KV arithmetic --------------------------------------------------------------------

    def _index(self, block_ids: Sequence[int], lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.block_size
        assert hi <= len(block_ids) * bs, f"positions up to {hi} but only {len(block_ids)} blocks"
        pos = torch.arange(lo, hi)
        return torch.tensor(block_ids, dtype=torch.long)[pos // bs], pos % bs

    def _write_range(self, tokens, seeds, block_ids, lo: int, hi: int, layer: Optional[int] = None) -> None:
        if hi <= lo:
            return
        extend_seeds(seeds, tokens, hi)
        b, o = self._index(block_ids, lo, hi)
        for li, name in enumerate(self.layer_names):
            if layer is None or li == layer:
                self._views[name][b, o] = kv_values(seeds[lo:hi], li, self.rank, self.slot_shape, self.dtype)

    def _mismatches(self, li: int, name: str, seeds: list[int], block_ids, lo: int, hi: int,
                    tokens: Optional[Sequence[int]] = None) -> list[int]:
        """Positions in [lo, hi) whose KV in layer ``li`` differs from the expectation."""
        if hi <= lo:
            return []
        if tokens is not None:
            extend_seeds(seeds, tokens, hi)
        b, o = self._index(block_ids, lo, hi)
        got = self._views[name][b, o]
        want = kv_values(seeds[lo:hi], li, self.rank, self.slot_shape, self.dtype)
        ok = (got == want).reshape(hi - lo, -1).all(dim=1)
        return [lo + int(i) for i in torch.nonzero(~ok).flatten()]
