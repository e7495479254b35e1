"""``KVOutputAggregator``: how a multi-worker executor merges the workers'
``KVConnectorOutput``s into the one the scheduler sees. An id is finished only once every
worker reported it (or ``expected_finished_count`` workers); stats merge with ``aggregate``;
invalid block ids are a union. With one worker the executor passes the output through as is.
"""

from __future__ import annotations

from typing import Optional

from vllm.v1.outputs import KVConnectorOutput, ModelRunnerOutput

from .contract import expect


class KVOutputAggregator:
    def __init__(self, expected_finished_count: int) -> None:
        self.expected = expected_finished_count
        self._remaining: dict[str, dict[str, int]] = {"sending": {}, "recving": {}}
        self._reported: dict[str, dict[str, set[int]]] = {"sending": {}, "recving": {}}

    def _update(self, kind: str, ids: Optional[set[str]], rank: int, out: set[str]) -> None:
        remaining, reported = self._remaining[kind], self._reported[kind]
        for rid in ids or ():
            seen = reported.setdefault(rid, set())
            expect(rank not in seen, f"worker {rank} reported finished_{kind} for {rid!r} twice before every "
                                     "worker reported it: the request would never complete")
            seen.add(rank)
            left = remaining.get(rid, self.expected) - 1
            if left == 0:
                out.add(rid)
                remaining.pop(rid, None)
                reported.pop(rid, None)
            else:
                remaining[rid] = left

    def aggregate(self, outputs: list[ModelRunnerOutput], output_rank: int = 0) -> ModelRunnerOutput:
        sending: set[str] = set()
        recving: set[str] = set()
        stats = None
        invalid: set[int] = set()
        any_kv = False
        for rank, mro in enumerate(outputs):
            kv = mro.kv_connector_output
            if not kv:
                continue
            any_kv = True
            if kv.expected_finished_count > 0:
                self.expected = kv.expected_finished_count
            self._update("sending", kv.finished_sending, rank, sending)
            self._update("recving", kv.finished_recving, rank, recving)
            if stats is None:
                stats = kv.kv_connector_stats
            elif kv.kv_connector_stats:
                expect(isinstance(stats, type(kv.kv_connector_stats)), "workers returned different stats classes")
                stats = stats.aggregate(kv.kv_connector_stats)
            invalid |= kv.invalid_block_ids
        out = outputs[output_rank]
        bad: dict = {}
        for mro in outputs:  # harness-only: wrong KV read by any worker taints the step's output
            for rid, msg in getattr(mro, "harness_bad_reads", {}).items():
                bad.setdefault(rid, msg)
        out.harness_bad_reads = bad
        # Harness choice: when every worker dropped its output (no-forward, nothing to say),
        # the scheduler sees None, as with one worker.
        out.kv_connector_output = KVConnectorOutput(
            finished_sending=sending or None, finished_recving=recving or None, kv_connector_stats=stats or None,
            invalid_block_ids=invalid, expected_finished_count=self.expected) if any_kv else None
        return out
