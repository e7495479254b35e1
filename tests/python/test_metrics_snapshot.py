"""The metrics snapshot (flexkv_metrics_read / flexkv_metrics_names) read from Python: it agrees
with the stats JSON, and the connector's per-step stats report only what changed."""

from __future__ import annotations

import ctypes

from flexkv.integration.vllm._step_stats import StepStats
from flexkv.manager import metrics_names


def test_snapshot_agrees_with_stats_after_a_save(kv_cache, make_engine):
    cache = kv_cache("kv_first")
    m = make_engine(cache)
    assert m.put("a", list(range(33)), [0, 1, 2])
    names = [x["name"] for x in metrics_names()]
    buf = (ctypes.c_int64 * len(names))()
    assert m.read_metrics(buf) == len(names)
    values = dict(zip(names, buf))
    st = m.stats()
    for key in ("blocks_saved", "bytes_moved", "cpu_blocks_used", "match_calls", "registered"):
        assert values[key] == int(st[key]), key
    assert values["blocks_saved"] == 2


def test_step_stats_report_changes_only(kv_cache, make_engine):
    m = make_engine(kv_cache("kv_first"))
    s = StepStats(m)
    first = s.changes()
    assert first is not None and first[1]["registered"] == 1  # the first read reports levels
    assert s.changes() is None  # nothing happened since
    assert m.put("a", list(range(33)), [0, 1, 2])
    counters, gauges = s.changes()
    assert counters["blocks_saved"] == 2 and gauges["cpu_blocks_used"] == 2
    assert "evictions" not in counters  # only what moved
    assert s.changes() is None
