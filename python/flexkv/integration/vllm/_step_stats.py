"""What vLLM gets from the scheduler side's ``get_kv_connector_stats`` each step: the engine
counters that changed since the previous step (as differences) with the gauges' levels, or
None when nothing changed.

vLLM calls it every step in which a worker returned stats (ours always do, to keep vLLM calling
``update_connector_output``), and ships the result to its front end, which adds the steps of a
log interval up (``FlexKVStats.aggregate``) and feeds Prometheus. So each step costs one read
of the engine's int64 metrics snapshot into a reused buffer and one compare with the last one;
only a step in which something happened builds a dict.

Owned by the scheduler thread.
"""

from __future__ import annotations

import ctypes
from typing import Dict, Optional, Tuple

from ...manager import KVManager, metrics_names


class StepStats:
    def __init__(self, manager: KVManager) -> None:
        self._manager = manager
        self._info = metrics_names()
        n = len(self._info)
        self._counter = [m["kind"] == "counter" for m in self._info]
        self._names = [m["name"] for m in self._info]
        self._cur = (ctypes.c_int64 * n)()
        self._last = bytes(ctypes.sizeof(self._cur))  # all zero: the first change reports totals

    def changes(self) -> Optional[Tuple[Dict[str, int], Dict[str, int]]]:
        """None when nothing changed since the last call; else (how much each counter that
        moved grew, every gauge's level), so that the last report of an interval has them all."""
        self._manager.read_metrics(self._cur)
        raw = bytes(self._cur)
        if raw == self._last:
            return None
        prev = (ctypes.c_int64 * len(self._cur)).from_buffer_copy(self._last)
        self._last = raw
        counters: Dict[str, int] = {}
        gauges: Dict[str, int] = {}
        for i, (now, was) in enumerate(zip(self._cur, prev)):
            if not self._counter[i]:
                gauges[self._names[i]] = now
            elif now != was:
                counters[self._names[i]] = now - was
        return counters, gauges
