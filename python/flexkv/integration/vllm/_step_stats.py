"""What vLLM gets from the scheduler side's ``get_kv_connector_stats`` each step: the engine
counters that changed since the previous step (as differences) with the gauges' levels, or
None when nothing changed.

vLLM calls it every step in which a worker returned stats (ours always do, to keep vLLM calling
``update_connector_output``), and ships the result to its front end, which adds the steps of a
log interval up (``FlexKVStats.aggregate``) and feeds Prometheus. So each step costs one read
of the engine's int64 metrics snapshot into a reused buffer and one compare with the last one;
only a step in which something happened builds a dict.

Keys are the entries' keys (``name``, or ``name{k=v,...}`` for an entry with labels, see
flexkv.metrics._series); histogram entries (bucket counts, sums, counts) only grow, so they are
reported as counters are.

Owned by the scheduler thread.
"""

from __future__ import annotations

import ctypes
from operator import itemgetter
from typing import Dict, Optional, Tuple

from ...manager import KVManager, metrics_names
from ...metrics._series import MONOTONIC_KINDS, key_of


class StepStats:
    def __init__(self, manager: KVManager) -> None:
        self._manager = manager
        info = metrics_names()
        self._cur = (ctypes.c_int64 * len(info))()
        self._view = memoryview(self._cur).cast("B").cast("q")  # tolist() without per-item ctypes access
        keys = [key_of(m["name"], m.get("labels")) for m in info]
        self._counters = [(i, keys[i]) for i, m in enumerate(info) if m["kind"] in MONOTONIC_KINDS]
        gauge_idx = [i for i, m in enumerate(info) if m["kind"] not in MONOTONIC_KINDS]
        self._gauge_names = [keys[i] for i in gauge_idx]
        self._gauges = itemgetter(*gauge_idx) if len(gauge_idx) > 1 else (lambda v: (v[gauge_idx[0]],))
        self._last = bytes(ctypes.sizeof(self._cur))
        self._prev = [0] * len(info)  # all zero: the first change reports totals

    def changes(self) -> Optional[Tuple[Dict[str, int], Dict[str, int]]]:
        """None when nothing changed since the last call; else (how much each counter that
        moved grew, every gauge's level), so that the last report of an interval has them all."""
        self._manager.read_metrics(self._cur)
        raw = bytes(self._cur)
        if raw == self._last:
            return None
        now, prev = self._view.tolist(), self._prev
        self._last, self._prev = raw, now
        counters = {name: now[i] - prev[i] for i, name in self._counters if now[i] != prev[i]}
        return counters, dict(zip(self._gauge_names, self._gauges(now)))
