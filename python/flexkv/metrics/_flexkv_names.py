"""FlexKV's series names, computed from FlexKv's snapshot, so dashboards made for FlexKV keep
working. FlexKV exports 14 series (Python endpoint flexkv_py_*, C++ endpoint flexkv_cpp_*);
the 11 below are mapped, the rest have no counterpart here (see NOT_MAPPED and docs/metrics.md).

Hits per tier come from the engine's ``matched_tokens_by_tier{tier=cpu|ssd|remote}`` (the tier a
load reads each offered block from); a snapshot without them (an older library) falls back to
``device="cpu"`` for the local hits, the SSD tier's included, and ``device="remote"`` for
``remote_matched_blocks``. Transfers come from ``transfer_blocks``, ``transfer_bytes`` and
``transfer_ops`` by direction (the per-direction stats counters times ``block_bytes`` without
them). ``cache_miss_blocks`` are the queried blocks FlexKv did not offer, blocks vLLM's own
prefix cache held included (FlexKV's connector asks about those too).

A derived counter (a difference of two counters read without a common lock) could dip for one
scrape; each is kept at its highest value so far, as a counter must never go down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

NOT_MAPPED = {
    "flexkv_py_allocated_blocks_total": "slot allocations are not counted apart from saves and promotions",
    "flexkv_py_joint_prefetch_outcomes_total": "sliding-window (SWA) state is not cached",
    "flexkv_py_joint_prefetch_swa_slot_alloc_failed_total": "sliding-window (SWA) state is not cached",
}

Values = Mapping[str, int]
_TIER_KEY = re.compile(r"^matched_tokens_by_tier\{tier=([^,}]*)\}$")

# (transfer_type, operation, the engine's direction, the stats counter of blocks without it), in
# FlexKV's TransferType names.
_TRANSFERS = (
    ("H2D", "get", "h2d", "blocks_loaded"), ("D2H", "put", "d2h", "blocks_saved"),
    ("DISK2H", "get", "ssd2h", "ssd_blocks_read"), ("H2DISK", "put", "h2ssd", "ssd_blocks_written"),
    ("REMOTE2H", "get", "remote2h", "remote_blocks_read"), ("H2REMOTE", "put", "h2remote", "remote_blocks_written"),
)
# FlexKV's cache operations: a lookup's outcome (hit: every block, match: some, miss: none), an insert (a save).
_CACHE_OPS = (("hit", "lookups{outcome=full}"), ("match", "lookups{outcome=partial}"),
              ("miss", "lookups{outcome=miss}"), ("insert", "transfer_ops{direction=d2h}"))


@dataclass
class Series:
    name: str  # without _total: prometheus_client adds it to counters
    kind: str  # counter | gauge
    help: str
    labelnames: Tuple[str, ...]
    samples: List[Tuple[Tuple[str, ...], float]] = field(default_factory=list)


def _hits(v: Values, tpb: int) -> List[Tuple[Tuple[str, ...], float]]:
    tiers = [(m.group(1), n) for k, n in v.items() if (m := _TIER_KEY.match(k))]
    if tiers:
        return [((tier,), n // tpb) for tier, n in tiers]
    remote = v.get("remote_matched_blocks", 0)
    return [(("cpu",), max(0, v.get("matched_tokens", 0) // tpb - remote)), (("remote",), remote)]


def _transfer_blocks(v: Values, direction: str, stats_key: str) -> int:
    return v.get(f"transfer_blocks{{direction={direction}}}", v.get(stats_key, 0))


def _transfer_bytes(v: Values, direction: str, stats_key: str) -> int:
    key = f"transfer_bytes{{direction={direction}}}"
    return v[key] if key in v else v.get(stats_key, 0) * v.get("block_bytes", 0)


def _per_device(v: Values, cpu: int, ssd: int) -> List[Tuple[Tuple[str, ...], float]]:
    out = [(("cpu",), cpu)]
    if v.get("ssd_blocks_total", 0) > 0:
        out.append((("ssd",), ssd))
    return out


_TABLE: Sequence[Tuple[str, str, str, Tuple[str, ...], Callable[[Values, int], list]]] = (
    ("flexkv_py_cache_hit_blocks", "counter", "blocks a lookup offered, by the tier holding them", ("device",),
     _hits),
    ("flexkv_py_cache_miss_blocks", "counter", "queried blocks no tier offered (vLLM's own hits included)", (),
     lambda v, t: [((), max(0, (v.get("queried_tokens", 0) - v.get("matched_tokens", 0)) // t))]),
    ("flexkv_py_allocation_failures", "counter", "blocks a save could not store (tier full of pinned blocks)",
     ("mode",), lambda v, t: [(("local",), v.get("blocks_dropped", 0))]),
    ("flexkv_py_transfer_blocks", "counter", "blocks transferred, at completion", ("transfer_type", "operation"),
     lambda v, t: [((ty, op), _transfer_blocks(v, d, k)) for ty, op, d, k in _TRANSFERS]),
    ("flexkv_py_transfer_ops", "counter", "transfer operations ended", ("transfer_type", "operation"),
     lambda v, t: [((ty, op), v[f"transfer_ops{{direction={d}}}"]) for ty, op, d, _ in _TRANSFERS
                   if f"transfer_ops{{direction={d}}}" in v]),
    ("flexkv_py_transfer_bytes", "counter", "bytes transferred, at completion", ("transfer_type", "operation"),
     lambda v, t: [((ty, op), _transfer_bytes(v, d, k)) for ty, op, d, k in _TRANSFERS]),
    ("flexkv_py_mempool_total_blocks", "gauge", "slots of the tier", ("device",),
     lambda v, t: _per_device(v, v.get("cpu_blocks_total", 0), v.get("ssd_blocks_total", 0))),
    ("flexkv_py_mempool_free_blocks", "gauge", "free slots of the tier", ("device",),
     lambda v, t: _per_device(v, v.get("cpu_blocks_total", 0) - v.get("cpu_blocks_used", 0),
                              v.get("ssd_blocks_total", 0) - v.get("ssd_blocks_used", 0))),
    ("flexkv_py_evicted_blocks", "counter", "blocks evicted from the tier", ("device",),
     lambda v, t: _per_device(v, v.get("evictions", 0), v.get("ssd_evictions", 0))),
    ("flexkv_cpp_cache_blocks", "counter", "index blocks by operation (matched, inserted by saves, evicted)",
     ("operation",), lambda v, t: [(("matched",), v.get("matched_tokens", 0) // t),
                                   (("inserted",), v.get("blocks_saved", 0)), (("evicted",), v.get("evictions", 0))]),
    ("flexkv_cpp_cache_ops", "counter", "index operations: lookups by outcome (hit, match: partial, miss), inserts",
     ("operation",), lambda v, t: [((op,), v[k]) for op, k in _CACHE_OPS if k in v]),
)

NAMES = tuple(name for name, *_ in _TABLE)


class FlexKVNames:
    """Builds FlexKV's series for a set of engines; remembers each counter's highest value."""

    def __init__(self) -> None:
        self._high: Dict[Tuple[str, str, Tuple[str, ...]], float] = {}

    def series(self, engines: Sequence[Tuple[str, int, Values]]) -> List[Series]:
        """``engines``: (engine label, tokens per block, snapshot by key) each."""
        present = {label for label, _, _ in engines}
        self._high = {k: v for k, v in self._high.items() if k[1] in present}  # closed engines' go
        out = []
        for name, kind, help_, labels, fn in _TABLE:
            s = Series(name, kind, help_, ("engine",) + labels)
            for label, tpb, values in engines:
                for lv, value in fn(values, max(1, tpb)):
                    if kind == "counter":
                        k = (name, label, lv)
                        value = self._high[k] = max(self._high.get(k, 0), value)
                    s.samples.append(((label,) + lv, float(value)))
            out.append(s)
        return out
