"""The standalone /metrics endpoint, scraped over HTTP as Prometheus would: every series of
metrics_names() and FlexKV's names are there, in Prometheus's text format, with the values a
scripted workload predicts; one endpoint serves every engine of the process; a closed engine
leaves it; no secret of the configuration appears in it."""

from __future__ import annotations

import ctypes
import logging
import re
import socket
import urllib.request
import uuid

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import flexkv  # noqa: E402
from conftest import REPO  # noqa: E402
from flexkv import metrics  # noqa: E402
from flexkv.manager import metrics_names  # noqa: E402

BB, NB, TPB = 4096, 8, 16
PASSWORD = "pw-" + uuid.uuid4().hex
SECRET = "sec-" + uuid.uuid4().hex
URL_PASSWORD = "up-" + uuid.uuid4().hex


@pytest.fixture
def endpoint():
    """The process's endpoint on a free loopback port, stopped after the test."""
    metrics.stop()
    address = metrics.start("127.0.0.1", 0)
    assert address is not None and address[0] == "127.0.0.1"
    yield address
    metrics.stop()


@pytest.fixture
def host_engine():
    """Engines whose KV cache is a ctypes buffer of NB blocks of BB bytes; closed after the test."""
    made = []

    def make(**cfg):
        buf = (ctypes.c_uint8 * (NB * BB))()
        m = flexkv.KVManager({"num_cpu_blocks": 16, "block_bytes": BB, "tokens_per_block": TPB,
                              "use_hugepage_cpu_buffer": False, "transfer_threads": 2, **cfg})
        m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(buf), BB, BB)], NB)
        m._test_buffer = buf  # alive as long as the engine
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def scrape(address) -> str:
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode("utf-8")


def values(text: str, engine: str) -> dict:
    """{(sample name, other labels): value} of one engine, parsed as Prometheus parses it."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("engine") == engine:
                rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "engine"))
                out[(s.name, rest)] = s.value
    return out


def workload(m) -> None:
    tokens = list(range(1000, 1000 + 2 * TPB + 1))  # 2 full blocks (the last token is never saved)
    assert m.put("writer", tokens, [0, 1, 2])
    assert m.get("reader", tokens, [3, 4, 5]) == set()


def documented_series() -> set:
    """The engine's series the tables of docs/metrics.md name (a histogram by its base name)."""
    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_]+)` \| (?:counter|gauge|histogram) \|", doc, re.MULTILINE))


def test_a_scrape_holds_every_series_with_the_workload_s_values(endpoint, host_engine):
    m = host_engine()
    workload(m)
    text = scrape(endpoint)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for fam in metrics.families(metrics_names()):  # every entry group of the snapshot is a series, of its kind
        assert fams["flexkv_" + fam.name].type == fam.kind, fam.name
    documented = documented_series()
    assert len(documented) > 55 and "transfer_seconds" in documented
    for name in documented:  # and so is every series the documentation promises
        assert "flexkv_" + name in fams, name
    for name in metrics.FLEXKV_NAMES:
        assert name in fams, name
    for name in metrics.FLEXKV_NOT_MAPPED:  # documented as not served
        assert name[: -len("_total")] not in fams, name
    v = values(text, metrics.engine_label(m))
    assert v[("flexkv_blocks_saved_total", ())] == 2
    assert v[("flexkv_blocks_loaded_total", ())] == 2
    assert v[("flexkv_bytes_moved_total", ())] == 4 * BB  # 2 blocks out, 2 blocks back
    assert v[("flexkv_matched_tokens_total", ())] == 2 * TPB
    assert v[("flexkv_queried_tokens_total", ())] == 2 * TPB
    assert v[("flexkv_cpu_blocks_used", ())] == 2 and v[("flexkv_cpu_blocks_total", ())] == 16
    assert v[("flexkv_block_bytes", ())] == BB and v[("flexkv_registered", ())] == 1
    # FlexKV's names, computed from the same snapshot.
    assert v[("flexkv_py_cache_hit_blocks_total", (("device", "cpu"),))] == 2
    assert v[("flexkv_py_cache_miss_blocks_total", ())] == 0
    assert v[("flexkv_py_transfer_blocks_total", (("operation", "put"), ("transfer_type", "D2H")))] == 2
    assert v[("flexkv_py_transfer_bytes_total", (("operation", "put"), ("transfer_type", "D2H")))] == 2 * BB
    assert v[("flexkv_py_transfer_bytes_total", (("operation", "get"), ("transfer_type", "H2D")))] == 2 * BB
    assert v[("flexkv_py_mempool_total_blocks", (("device", "cpu"),))] == 16
    assert v[("flexkv_py_mempool_free_blocks", (("device", "cpu"),))] == 14
    assert v[("flexkv_py_evicted_blocks_total", (("device", "cpu"),))] == 0
    assert v[("flexkv_cpp_cache_blocks_total", (("operation", "inserted"),))] == 2
    assert ("flexkv_py_mempool_total_blocks", (("device", "ssd"),)) not in v  # no SSD tier, no SSD series
    # The engine metrics model: the put is one operation of 2 blocks each way, the get's lookup a full hit.
    for d in ("d2h", "h2d"):
        assert v[("flexkv_transfer_blocks_total", (("direction", d),))] == 2
        assert v[("flexkv_transfer_bytes_total", (("direction", d),))] == 2 * BB
        assert v[("flexkv_transfer_ops_total", (("direction", d),))] == 1
        assert v[("flexkv_transfer_seconds_count", (("direction", d),))] == 1
        assert v[("flexkv_transfer_seconds_bucket", (("direction", d), ("le", "+Inf")))] == 1
        assert 0 < v[("flexkv_transfer_seconds_sum", (("direction", d),))] < 5
    assert v[("flexkv_transfer_ops_total", (("direction", "ssd2h"),))] == 0
    assert v[("flexkv_matched_tokens_by_tier_total", (("tier", "cpu"),))] == 2 * TPB
    assert v[("flexkv_matched_tokens_by_tier_total", (("tier", "ssd"),))] == 0
    assert v[("flexkv_lookups_total", (("outcome", "full"),))] == 1
    assert v[("flexkv_blocks_not_offered_total", (("reason", "not_cached"),))] == 0
    assert v[("flexkv_requests_total", (("event", "saved"),))] == 1
    assert v[("flexkv_requests_total", (("event", "loaded"),))] == 1
    assert v[("flexkv_requests_total", (("event", "finished"),))] == 2
    assert v[("flexkv_transfer_failures_total", (("direction", "h2d"), ("reason", "checksum")))] == 0
    assert v[("flexkv_tier_used_blocks", (("tier", "cpu"),))] == 2
    assert v[("flexkv_tier_capacity_bytes", (("tier", "cpu"),))] == 16 * BB
    assert v[("flexkv_queue_depth", (("queue", "copy"),))] == 0
    assert v[("flexkv_py_transfer_ops_total", (("operation", "put"), ("transfer_type", "D2H")))] == 1
    assert v[("flexkv_py_transfer_ops_total", (("operation", "get"), ("transfer_type", "H2D")))] == 1
    assert v[("flexkv_cpp_cache_ops_total", (("operation", "hit"),))] == 1
    assert v[("flexkv_cpp_cache_ops_total", (("operation", "insert"),))] == 1
    assert v[("flexkv_cpp_cache_ops_total", (("operation", "miss"),))] == 0


def test_one_endpoint_serves_every_engine_and_a_closed_one_leaves_it(endpoint, host_engine):
    a, b = host_engine(), host_engine()
    workload(a)
    text = scrape(endpoint)
    la, lb = metrics.engine_label(a), metrics.engine_label(b)
    assert la != lb
    assert values(text, la)[("flexkv_blocks_saved_total", ())] == 2
    assert values(text, lb)[("flexkv_blocks_saved_total", ())] == 0
    b.close()
    text = scrape(endpoint)
    assert values(text, lb) == {} and values(text, la)[("flexkv_blocks_loaded_total", ())] == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_secret_of_the_configuration_appears_in_a_scrape(endpoint, host_engine, caplog):
    with caplog.at_level(logging.WARNING):  # the unreachable Redis is warned about, by host only
        m = host_engine(redis_password=PASSWORD, secret=SECRET, remote_timeout_ms=300,
                        remote_url=f"redis://flexkv:{URL_PASSWORD}@127.0.0.1:{closed_port()}")
    workload(m)
    text = scrape(endpoint)
    assert values(text, metrics.engine_label(m))[("flexkv_blocks_saved_total", ())] == 2
    for s in (PASSWORD, SECRET, URL_PASSWORD, "flexkv:", "redis://"):
        assert s not in text


def test_an_engine_configured_for_metrics_starts_the_endpoint(host_engine):
    metrics.stop()
    try:
        m = host_engine(enable_metrics=True, metrics_port=0)
        assert metrics.address() is not None
        host_engine(enable_metrics=True, metrics_port=0)  # a second engine joins the same endpoint
        text = scrape(metrics.address())
        assert ("flexkv_registered", ()) in values(text, metrics.engine_label(m))
    finally:
        metrics.stop()
