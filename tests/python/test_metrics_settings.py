"""When and where the standalone endpoint serves: FLEXKV_ENABLE_METRICS, FLEXKV_METRICS_PORT
(FlexKV's FLEXKV_PY_METRICS_PORT too) and FLEXKV_METRICS_HOST, loopback by default; a file or
dict key wins over its variable; a taken port or a missing prometheus_client is one warning,
never a failed engine."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from flexkv import ConfigError
from flexkv.config import load_config, normalize, to_json
from flexkv.metrics import exporter


@pytest.mark.parametrize("config, env, want", [
    ({}, {}, None),
    ({}, {"FLEXKV_ENABLE_METRICS": "0"}, None),
    ({}, {"FLEXKV_ENABLE_METRICS": "1"}, ("127.0.0.1", 8080)),
    ({}, {"FLEXKV_ENABLE_METRICS": "true", "FLEXKV_PY_METRICS_PORT": "9100"}, ("127.0.0.1", 9100)),
    ({}, {"FLEXKV_ENABLE_METRICS": "1", "FLEXKV_METRICS_PORT": "9200", "FLEXKV_PY_METRICS_PORT": "9100",
          "FLEXKV_METRICS_HOST": "0.0.0.0"}, ("0.0.0.0", 9200)),
    ({"enable_metrics": False}, {"FLEXKV_ENABLE_METRICS": "1"}, None),
    ({"enable_metrics": True, "metrics_port": 9300}, {"FLEXKV_METRICS_PORT": "9200"}, ("127.0.0.1", 9300)),
    ({}, {"FLEXKV_ENABLE_METRICS": "1", "FLEXKV_METRICS_PORT": "http"}, ("127.0.0.1", 8080)),  # warned
])
def test_settings(config, env, want):
    assert exporter._settings(config, env) == want


def test_keys_come_from_files_and_variables_and_never_reach_the_engine():
    cfg = load_config(env={"FLEXKV_ENABLE_METRICS": "1", "FLEXKV_PY_METRICS_PORT": "9100",
                           "FLEXKV_METRICS_HOST": "127.0.0.2"})
    assert (cfg["enable_metrics"], cfg["metrics_port"], cfg["metrics_host"]) == (True, 9100, "127.0.0.2")
    assert b"metrics" not in to_json(cfg)
    assert normalize({"py_metrics_port": 9100})["metrics_port"] == 9100
    with pytest.raises(ConfigError, match="py_metrics_port"):
        normalize({"py_metrics_port": 9100, "metrics_port": 9200})
    with pytest.raises(ConfigError, match="metrics_port"):
        normalize({"metrics_port": 70000})


def test_flexkv_metrics_port_wins_over_flexkv_s_variable_with_a_warning(caplog):
    env = {"FLEXKV_ENABLE_METRICS": "1", "FLEXKV_METRICS_PORT": "9200", "FLEXKV_PY_METRICS_PORT": "9100"}
    with caplog.at_level(logging.WARNING):
        assert load_config(env=env)["metrics_port"] == 9200
        assert exporter._settings({}, env) == ("127.0.0.1", 9200)  # a dict configuration reads them here
    assert caplog.text.count("FLEXKV_METRICS_PORT=9200 wins over FLEXKV_PY_METRICS_PORT=9100") == 2


def test_flexkv_s_variables_no_longer_warn_that_they_have_no_effect(caplog):
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        load_config(env={"FLEXKV_ENABLE_METRICS": "1", "FLEXKV_PY_METRICS_PORT": "9100", "FLEXKV_METRICS_PORT": "9100"})
    assert "metrics" not in caplog.text


def test_a_taken_port_is_a_warning(caplog):
    exporter.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with caplog.at_level(logging.WARNING, logger="flexkv.metrics"):
            assert exporter.start("127.0.0.1", s.getsockname()[1]) is None
    assert "cannot serve /metrics" in caplog.text and "FLEXKV_METRICS_PORT" in caplog.text
    assert exporter.address() is None


def test_without_prometheus_client_engines_run_and_one_warning_says_what_to_install():
    # A child in which prometheus_client cannot be imported, whether or not it is installed.
    code = textwrap.dedent("""
        import ctypes, logging, sys
        sys.modules["prometheus_client"] = None  # import raises ImportError
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
        import flexkv
        from flexkv import metrics
        for _ in range(2):
            with flexkv.KVManager({"num_cpu_blocks": 4, "block_bytes": 4096, "use_hugepage_cpu_buffer": False,
                                   "enable_metrics": True, "metrics_port": 0}) as m:
                assert m.stats()["cpu_blocks_total"] == 4
                assert "hit ratio" in metrics.summary_lines(m)[0]
        assert metrics.start("127.0.0.1", 0) is None and metrics.address() is None
        print("engines ran")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO / "python"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "engines ran" in out.stdout
    assert out.stderr.count("prometheus_client is not installed") == 1, out.stderr
    assert "apt-get install python3-prometheus-client" in out.stderr and "Traceback" not in out.stderr
