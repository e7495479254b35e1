"""The standalone /metrics endpoint, scraped over HTTP as Prometheus would: every series of
metrics_names() and FlexKV's names are there, in Prometheus's text format, with the values a
scripted workload predicts; one endpoint serves every engine of the process; a closed engine
leaves it; no secret of the configuration appears in it."""

from __future__ import annotations

import ctypes
import logging
import socket
import urllib.request
import uuid

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import flexkv  # noqa: E402
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


def test_a_scrape_holds_every_series_with_the_workload_s_values(endpoint, host_engine):
    m = host_engine()
    workload(m)
    text = scrape(endpoint)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for info in metrics_names():  # every entry of the snapshot is a series, of its kind
        assert fams["flexkv_" + info["name"]].type == info["kind"], info["name"]
    for name in metrics.FLEXKV_NAMES:
        assert name in fams, name
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
