"""metrics_names() entries become Prometheus series by themselves: labels, histograms (buckets
with ``le``, ``_sum`` in microseconds for ``*_seconds``, ``_count``) and plain counters and
gauges, in the standalone collector's scrape and in the per-step stats, from a names list the
engine does not have yet."""

from __future__ import annotations

import ctypes

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from flexkv.integration.vllm._step_stats import StepStats  # noqa: E402
from flexkv.metrics import _series  # noqa: E402
from flexkv.metrics._collector import EngineCollector  # noqa: E402

NAMES = [
    {"name": "blocks_saved", "kind": "counter", "help": "blocks saved"},
    {"name": "matched_tokens", "kind": "counter", "help": "tokens matched", "labels": {"tier": "cpu"}},
    {"name": "matched_tokens", "kind": "counter", "help": "tokens matched", "labels": {"tier": "ssd"}},
    {"name": "cpu_blocks_used", "kind": "gauge", "help": "CPU slots in use"},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "h2d", "le": "0.001"}},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "h2d", "le": "0.01"}},
    {"name": "transfer_seconds_sum", "kind": "histogram", "help": "", "labels": {"direction": "h2d"}},
    {"name": "transfer_seconds_count", "kind": "histogram", "help": "transfer time", "labels": {"direction": "h2d"}},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "d2h", "le": "0.001"}},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "d2h", "le": "0.01"}},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "d2h", "le": "+Inf"}},
    {"name": "transfer_seconds_sum", "kind": "histogram", "help": "", "labels": {"direction": "d2h"}},
    {"name": "transfer_seconds_count", "kind": "histogram", "help": "transfer time", "labels": {"direction": "d2h"}},
    {"name": "bad name", "kind": "counter", "help": "skipped, not fatal"},
    {"name": "sneaky", "kind": "gauge", "help": "reserved label", "labels": {"engine": "x"}},
]
# h2d: 3 transfers <= 1 ms, 5 <= 10 ms, 7 in all, 25 ms in total; d2h: 1, 1, 2 (its +Inf given), 2.5 s.
VALUES = [2, 32, 16, 5, 3, 5, 25_000, 7, 1, 1, 2, 2_500_000, 2, 99, 99]


class FakeEngine:
    """What the collector and StepStats use of a KVManager: read_metrics into a ctypes array."""

    closed = False
    tokens_per_block = 16

    def __init__(self, values):
        self.values = list(values)

    def read_metrics(self, buf) -> int:
        for i, v in enumerate(self.values[: len(buf)]):
            buf[i] = v
        return len(self.values)


def scrape(engines) -> dict:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(EngineCollector(engines=lambda: engines, names=lambda: NAMES, flexkv_names=False))
    return {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}


def samples(fam, name=None) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples if name in (None, s.name)}


def test_families_group_labels_and_histograms():
    fams = {f.name: f for f in _series.families(NAMES)}
    assert set(fams) == {"blocks_saved", "matched_tokens", "cpu_blocks_used", "transfer_seconds"}
    assert fams["matched_tokens"].labelnames == ("tier",) and len(fams["matched_tokens"].entries) == 2
    h = fams["transfer_seconds"]
    assert h.kind == "histogram" and h.labelnames == ("direction",) and h.help == "transfer time"
    assert set(h.histograms) == {("h2d",), ("d2h",)} and h.bounds() == [0.001, 0.01]
    assert _series.key_of("matched_tokens", {"tier": "cpu"}) == "matched_tokens{tier=cpu}"


def test_scrape_has_labelled_counters_gauges_and_histograms_per_engine():
    fams = scrape([("0", FakeEngine(VALUES)), ("1", FakeEngine([v * 2 for v in VALUES]))])
    assert samples(fams["flexkv_blocks_saved"], "flexkv_blocks_saved_total") == {
        ("flexkv_blocks_saved_total", (("engine", "0"),)): 2, ("flexkv_blocks_saved_total", (("engine", "1"),)): 4}
    got = samples(fams["flexkv_matched_tokens"], "flexkv_matched_tokens_total")
    assert got[("flexkv_matched_tokens_total", (("engine", "0"), ("tier", "cpu")))] == 32
    assert got[("flexkv_matched_tokens_total", (("engine", "0"), ("tier", "ssd")))] == 16
    assert fams["flexkv_cpu_blocks_used"].type == "gauge"
    h = fams["flexkv_transfer_seconds"]
    assert h.type == "histogram"
    s = samples(h)
    e0 = ("engine", "0")
    assert s[("flexkv_transfer_seconds_bucket", (("direction", "h2d"), e0, ("le", "0.001")))] == 3
    assert s[("flexkv_transfer_seconds_bucket", (("direction", "h2d"), e0, ("le", "0.01")))] == 5
    assert s[("flexkv_transfer_seconds_bucket", (("direction", "h2d"), e0, ("le", "+Inf")))] == 7  # from _count
    assert s[("flexkv_transfer_seconds_count", (("direction", "h2d"), e0))] == 7
    assert s[("flexkv_transfer_seconds_sum", (("direction", "h2d"), e0))] == pytest.approx(0.025)  # µs -> s
    assert s[("flexkv_transfer_seconds_bucket", (("direction", "d2h"), e0, ("le", "+Inf")))] == 2
    assert s[("flexkv_transfer_seconds_sum", (("direction", "d2h"), ("engine", "1")))] == pytest.approx(5.0)
    assert "flexkv_sneaky" not in fams and not any("bad" in n for n in fams)  # skipped, the rest served


def test_step_stats_key_labelled_entries_and_count_histograms_as_counters(monkeypatch):
    monkeypatch.setattr("flexkv.integration.vllm._step_stats.metrics_names", lambda: NAMES)
    eng = FakeEngine(VALUES)
    s = StepStats(eng)
    counters, gauges = s.changes()
    assert counters["matched_tokens{tier=cpu}"] == 32 and counters["matched_tokens{tier=ssd}"] == 16
    assert counters["transfer_seconds_bucket{direction=h2d,le=0.001}"] == 3
    assert counters["transfer_seconds_sum{direction=d2h}"] == 2_500_000
    assert gauges == {"cpu_blocks_used": 5, "sneaky{engine=x}": 99}  # a level is reported even when not exported
    eng.values[1] += 16  # 16 more CPU tokens matched, one more h2d transfer under 1 ms
    for i in (4, 5, 7):
        eng.values[i] += 1
    counters, _ = s.changes()
    assert counters == {"matched_tokens{tier=cpu}": 16, "transfer_seconds_bucket{direction=h2d,le=0.001}": 1,
                        "transfer_seconds_bucket{direction=h2d,le=0.01}": 1, "transfer_seconds_count{direction=h2d}": 1}
