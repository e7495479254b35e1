"""Failed block ids on their way to vLLM, and the loads that wait for them.

vLLM takes load errors only from the workers' outputs (``invalid_block_ids``), and in
``update_from_output`` it reads them before ``finished_recving``. The scheduler side finds
errors when it polls the engine, so the ids travel to the workers in the next step's connector
metadata and come back in that step's output. A load with failed blocks is held back until an
output whose ``invalid_block_ids`` holds all of them: vLLM has then truncated the request to its
valid prefix, and only then may the load be reported finished. This holds in every step order:
with vLLM's batch queue (async scheduling, pipeline parallelism) the step after the one that
found the errors was already scheduled and ran without them, so waiting "one step" is not
enough; a step without a forward pass carries them like any other.

An output can be lost (vLLM 0.10 drops a no-forward output that finished nothing), so ids sent
in step s and still not seen when an output of step s or later arrives are sent again.

Owned by the scheduler thread (vLLM calls every scheduler-side method from one thread).
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Iterable, Optional, Set

# Without the step number of an output (stats missing), ids not seen after this many outputs
# are taken as lost: more than any batch queue vLLM keeps (2 with async scheduling, PP stages).
_LOST_AFTER_OUTPUTS = 8


class LoadErrorRoute:
    def __init__(self) -> None:
        self._unsent: Set[int] = set()            # found, not yet in any metadata
        self._sent: Dict[int, tuple] = {}          # block id -> (step it was sent in, outputs seen then)
        self._held: Dict[str, Set[int]] = {}       # request id -> its failed ids vLLM has not seen yet
        self._outputs = 0

    def __bool__(self) -> bool:
        return bool(self._held or self._unsent or self._sent)

    def hold(self, request_id: str, failed_block_ids: Iterable[int]) -> None:
        """The request's load ended with these blocks failed: report it only once vLLM has them."""
        ids = set(failed_block_ids)
        self._held.setdefault(request_id, set()).update(ids)
        self._unsent |= ids

    def report(self, failed_block_ids: Iterable[int]) -> None:
        """Failed ids no load waits for (its request already finished): vLLM still gets them."""
        self._unsent.update(failed_block_ids)

    def held(self) -> Set[str]:
        """Requests whose load ended but is not reported yet."""
        return set(self._held)

    def take_for_step(self, step: int) -> FrozenSet[int]:
        """The ids the workers report in this step's output."""
        if not self._unsent:
            return frozenset()
        out = frozenset(self._unsent)
        for b in out:
            self._sent[b] = (step, self._outputs)
        self._unsent.clear()
        return out

    def on_output(self, invalid_block_ids: Optional[Iterable[int]], step: Optional[int]) -> Set[str]:
        """One worker output arrived (``step``: the metadata it ran with, if known). Returns the
        held requests vLLM now has every failed id of, to report in this output."""
        self._outputs += 1
        seen = set(invalid_block_ids or ())
        for b in seen:
            self._sent.pop(b, None)
        released = set()
        for rid, ids in self._held.items():
            ids -= seen
            if not ids:
                released.add(rid)
        for rid in released:
            del self._held[rid]
        for b, (sent_step, outputs_then) in list(self._sent.items()):
            lost = sent_step <= step if step is not None else self._outputs - outputs_then > _LOST_AFTER_OUTPUTS
            if lost:
                del self._sent[b]
                self._unsent.add(b)
        return released
