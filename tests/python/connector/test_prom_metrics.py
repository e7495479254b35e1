"""FlexKv's series on vLLM's /metrics, built and fed the way vLLM's front end does it:
PrometheusStatLogger makes a KVConnectorProm (labels model_name and engine, one value list per
engine index), which calls the connector class's build_prom_metrics with vLLM's metric classes,
then observe(stats.data, engine_idx) for every step's merged connector stats. Here the metric
classes are bound to a fresh CollectorRegistry. At TP=2 the workers' stats are merged in too and
the counters still equal the engine's own."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorProm  # noqa: E402

from flexkv.integration.vllm import plugin  # noqa: E402
from flexkv.integration.vllm._prom import FlexKVPromMetrics  # noqa: E402
from flexkv.integration.vllm.connector import FlexKVConnectorV1  # noqa: E402
from flexkv.integration.vllm.metadata import FlexKVStats  # noqa: E402
from flexkv.manager import metrics_names  # noqa: E402

from .harness import prompt  # noqa: E402
from .test_scenarios import served  # noqa: E402

MODEL = "stub/tiny-model"
LABELS = ["model_name", "engine"]
PER_ENGINE = {0: [MODEL, "0"], 1: [MODEL, "1"]}


def bound_to(registry: CollectorRegistry):
    """vLLM's metric classes, registering with ``registry`` instead of the global one."""

    def bind(cls):
        return type(cls.__name__, (cls,), {"__init__": lambda self, *a, **kw: cls.__init__(
            self, *a, **{**kw, "registry": registry})})

    return bind(Gauge), bind(Counter), bind(Histogram)


def vllm_prom(vllm_config, registry):
    """vLLM's KVConnectorProm with its metric classes bound to ``registry``."""
    gauge, counter, histogram = bound_to(registry)
    cls = type("BoundKVConnectorProm", (KVConnectorProm,),
               {"_gauge_cls": gauge, "_counter_cls": counter, "_histogram_cls": histogram})
    return cls(vllm_config, LABELS, PER_ENGINE)


def scraped(registry) -> dict:
    """{(sample name, labels): value} as Prometheus would parse vLLM's /metrics."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def labels(engine: str, **more) -> tuple:
    return tuple(sorted({"model_name": MODEL, "engine": engine, **more}.items()))


@pytest.fixture
def ours():
    plugin.register()  # FlexKVConnectorV1 resolves to the package's class (the fixture restores vLLM's)


def test_build_prom_metrics_registers_every_series_per_engine(ours, make_vllm_config):
    reg = CollectorRegistry()
    prom = vllm_prom(make_vllm_config(), reg)
    assert isinstance(prom.prom_metrics, FlexKVPromMetrics)
    got = scraped(reg)
    for info in metrics_names():
        own = dict(info.get("labels") or {})
        if info["kind"] == "histogram" and info["name"].endswith("_bucket"):
            continue  # prometheus_client spells le its own way ("1.0"); the _sum and _count are checked
        sample = "vllm:flexkv_" + info["name"] + ("_total" if info["kind"] == "counter" else "")
        for engine in ("0", "1"):
            assert got[(sample, labels(engine, **own))] == 0, (sample, own)
    # The class vLLM resolves answers for itself, without an instance (a classmethod).
    assert FlexKVConnectorV1.build_prom_metrics(make_vllm_config(), {Gauge: bound_to(CollectorRegistry())[0],
                                                Counter: bound_to(CollectorRegistry())[1],
                                                Histogram: bound_to(CollectorRegistry())[2]},
                                                LABELS, PER_ENGINE) is not None


def test_observe_adds_counter_deltas_and_sets_gauges_of_one_engine(ours, make_vllm_config):
    reg = CollectorRegistry()
    prom = vllm_prom(make_vllm_config(), reg)
    prom.observe({"step": 3, "counters": {"blocks_saved": 2, "bytes_moved": 4096}, "gauges": {"cpu_blocks_used": 2},
                  "elapsed_us": 10}, 1)
    prom.observe({"step": 4, "counters": {"blocks_saved": 3, "unknown_counter": 1},
                  "gauges": {"cpu_blocks_used": 5}}, 1)
    prom.observe({"step": 5}, 1)  # a step with the workers' stats only
    got = scraped(reg)
    assert got[("vllm:flexkv_blocks_saved_total", labels("1"))] == 5
    assert got[("vllm:flexkv_bytes_moved_total", labels("1"))] == 4096
    assert got[("vllm:flexkv_cpu_blocks_used", labels("1"))] == 5
    assert got[("vllm:flexkv_blocks_saved_total", labels("0"))] == 0  # the other engine is untouched


@pytest.mark.parametrize("tp", [1, 2])
def test_a_served_workload_s_counters_equal_the_engine_s(ours, make_vllm_config, make_engine, tmp_path, tp):
    extra = {"registration_socket": str(tmp_path / "reg.sock")} if tp > 1 else {}
    eng = make_engine(make_vllm_config(tp=tp, extra_config=extra), num_gpu_blocks=64)
    assert isinstance(eng.connector, FlexKVConnectorV1)
    served(eng, prompt(40))
    done = served(eng, prompt(40))
    assert done.num_external_computed_tokens == 32
    reg = CollectorRegistry()
    prom = vllm_prom(eng.vllm_config, reg)
    for stats in eng.scheduler.stats_history:  # each step's merged stats, as the front end gets them
        prom.observe(copy.deepcopy(stats.data), 0)
    st = eng.connector._impl.scheduler.manager.stats()
    got = scraped(reg)
    for name in ("blocks_saved", "blocks_loaded", "bytes_moved", "matched_tokens", "queried_tokens", "match_calls"):
        assert got[(f"vllm:flexkv_{name}_total", labels("0"))] == st[name], name
    assert st["blocks_saved"] == 2 and st["blocks_loaded"] == 2
    assert got[("vllm:flexkv_cpu_blocks_used", labels("0"))] == st["cpu_blocks_used"]
    assert got[("vllm:flexkv_registered", labels("0"))] == 1


def test_workers_stats_merged_with_the_scheduler_s_count_the_engine_once():
    scheduler = FlexKVStats(data={"counters": {"blocks_saved": 2}, "gauges": {"cpu_blocks_used": 2},
                                  "elapsed_us": 1000})
    merged = FlexKVStats(data={"step": 7})  # rank 0's, then rank 1's, as vLLM's output aggregator merges them
    merged.aggregate(FlexKVStats(data={"step": 7})).aggregate(scheduler)
    assert merged.data == {"step": 7, "counters": {"blocks_saved": 2}, "gauges": {"cpu_blocks_used": 2},
                           "elapsed_us": 1000}
    reduced = merged.reduce()
    assert reduced["flexkv_blocks_saved"] == 2 and reduced["flexkv_failures"] == 0


def test_reduce_shows_hit_ratio_rates_and_failures():
    s = FlexKVStats(data={"counters": {"queried_tokens": 100, "matched_tokens": 25, "blocks_loaded": 1000,
                                       "blocks_saved": 500, "bytes_moved": 3_000_000_000, "blocks_failed": 2,
                                       "ssd_read_errors": 1, "remote_writes_dropped": 4},
                          "gauges": {"block_bytes": 2_000_000}, "elapsed_us": 1_000_000})
    s.aggregate(FlexKVStats(data={"counters": {"blocks_saved": 500}, "elapsed_us": 1_000_000}))
    r = s.reduce()
    assert r["flexkv_hit_ratio"] == 0.25
    assert r["flexkv_load_gbps"] == 1.0 and r["flexkv_save_gbps"] == 1.0  # 2 GB each way in 2 s
    assert r["flexkv_gbps"] == 1.5
    assert r["flexkv_blocks_failed"] == 2 and r["flexkv_failures"] == 7


HIST = [
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "h2d", "le": "0.001"}},
    {"name": "transfer_seconds_bucket", "kind": "histogram", "help": "", "labels": {"direction": "h2d", "le": "0.01"}},
    {"name": "transfer_seconds_sum", "kind": "histogram", "help": "", "labels": {"direction": "h2d"}},
    {"name": "transfer_seconds_count", "kind": "histogram", "help": "transfer time", "labels": {"direction": "h2d"}},
    {"name": "matched_tokens", "kind": "counter", "help": "tokens matched", "labels": {"tier": "ssd"}},
]


def test_labelled_counters_and_histograms_reach_vllm_from_step_deltas(make_vllm_config):
    reg = CollectorRegistry()
    gauge, counter, histogram = bound_to(reg)
    prom = FlexKVPromMetrics(make_vllm_config(), {Gauge: gauge, Counter: counter, Histogram: histogram}, LABELS,
                             PER_ENGINE, HIST)
    # Step 1: 3 transfers <= 1 ms, 1 more <= 10 ms, 1 slower: 5 in all, 40 ms.
    prom.observe({"counters": {"transfer_seconds_bucket{direction=h2d,le=0.001}": 3,
                               "transfer_seconds_bucket{direction=h2d,le=0.01}": 4,
                               "transfer_seconds_count{direction=h2d}": 5,
                               "transfer_seconds_sum{direction=h2d}": 40_000,
                               "matched_tokens{tier=ssd}": 32}}, 0)
    # Step 2: one more <= 10 ms (so also <= +Inf), 5 ms.
    prom.observe({"counters": {"transfer_seconds_bucket{direction=h2d,le=0.01}": 1,
                               "transfer_seconds_count{direction=h2d}": 1,
                               "transfer_seconds_sum{direction=h2d}": 5_000}}, 0)
    got = scraped(reg)
    h2d = {"direction": "h2d"}
    assert got[("vllm:flexkv_transfer_seconds_bucket", labels("0", le="0.001", **h2d))] == 3
    assert got[("vllm:flexkv_transfer_seconds_bucket", labels("0", le="0.01", **h2d))] == 5
    assert got[("vllm:flexkv_transfer_seconds_bucket", labels("0", le="+Inf", **h2d))] == 6
    assert got[("vllm:flexkv_transfer_seconds_count", labels("0", **h2d))] == 6
    assert got[("vllm:flexkv_transfer_seconds_sum", labels("0", **h2d))] == pytest.approx(0.045)
    assert got[("vllm:flexkv_matched_tokens_total", labels("0", tier="ssd"))] == 32
    assert got[("vllm:flexkv_transfer_seconds_count", labels("1", **h2d))] == 0
