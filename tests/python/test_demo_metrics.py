"""The demo ends with the engine's metrics: a summary always, and with FLEXKV_ENABLE_METRICS=1
an excerpt of a real scrape of its /metrics whose figures agree with the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

DEMO = [sys.executable, str(REPO / "examples" / "demo.py"), "--conversations", "4", "--turns", "2"]


def run(**env) -> str:
    out = subprocess.run(DEMO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO / "python"), **env})
    assert out.returncode == 0 and "demo OK" in out.stdout, out.stdout + out.stderr
    return out.stdout


def test_the_demo_prints_a_metrics_summary():
    out = run(FLEXKV_ENABLE_METRICS="0")
    assert re.search(r"hit ratio\s+\d+\.\d%", out) and "loaded into the KV cache" in out and "evictions" in out
    assert "curl" not in out


def test_with_metrics_enabled_the_demo_shows_a_scrape_that_agrees_with_its_summary():
    pytest.importorskip("prometheus_client")
    out = run(FLEXKV_ENABLE_METRICS="1", FLEXKV_METRICS_PORT="0")
    assert re.search(r"\$ curl -s http://127\.0\.0\.1:\d+/metrics", out)
    loaded = int(re.search(r"blocks loaded / saved\s+(\d+)", out).group(1))
    assert f'flexkv_blocks_loaded_total{{engine="0"}} {loaded}.0' in out
    assert 'flexkv_py_transfer_bytes_total{engine="0",operation="get",transfer_type="H2D"}' in out
