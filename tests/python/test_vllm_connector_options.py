"""The connector's own options (save_on_abort, registration_timeout_s, registration_socket,
worker_huge_pages) are accepted in a FlexKV config file; kv_connector_extra_config still wins."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import flexkv
from flexkv.integration.vllm import _config
from flexkv.integration.vllm._registration import timeout_from
from flexkv.integration.vllm._worker import WorkerSide

FILE_OPTIONS = {"cpu_cache_gb": 1, "save_on_abort": True, "registration_timeout_s": 5,
                "registration_socket": "/run/flexkv/a.sock", "worker_huge_pages": "false"}


def vllm_config(extra=None):
    model = SimpleNamespace(model="m", dtype="float16", use_mla=False,
                            get_num_layers=lambda pc: 2, get_num_kv_heads=lambda pc: 2, get_head_size=lambda: 64)
    return SimpleNamespace(
        model_config=model,
        cache_config=SimpleNamespace(block_size=16, cache_dtype="auto"),
        parallel_config=SimpleNamespace(tensor_parallel_size=1, world_size=1),
        kv_transfer_config=SimpleNamespace(kv_connector_extra_config=dict(extra or {}), engine_id="e"),
    )


@pytest.fixture
def config_file(tmp_path):
    p = tmp_path / "flexkv.json"
    p.write_text(json.dumps(FILE_OPTIONS))
    return {"FLEXKV_CONFIG_PATH": str(p)}


def test_options_in_a_file_are_accepted_and_not_engine_keys(config_file):
    cfg, opts = _config.build(vllm_config(), env=config_file)
    assert opts.save_on_abort is True and cfg["cpu_cache_gb"] == 1.0
    assert not (set(FILE_OPTIONS) - {"cpu_cache_gb"}) & set(cfg)


def test_extra_config_wins_over_the_file(config_file):
    _, opts = _config.build(vllm_config({"save_on_abort": "false"}), env=config_file)
    assert opts.save_on_abort is False


def test_published_options_reach_the_registration_and_worker_code(config_file):
    vc = vllm_config({"registration_timeout_s": 7})
    _config.publish_connector_options(vc, env=config_file)
    extra = vc.kv_transfer_config.kv_connector_extra_config
    assert timeout_from(extra, env={}) == 7.0  # extra_config kept its own value
    assert extra["registration_socket"] == "/run/flexkv/a.sock"
    worker = WorkerSide(vc)
    assert worker.huge_pages is False and worker.socket_override == "/run/flexkv/a.sock"


def test_bad_option_values_in_a_file_name_the_key(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("registration_timeout_s: -3\n")
    with pytest.raises(flexkv.ConfigError, match="registration_timeout_s"):
        _config.build(vllm_config(), env={"FLEXKV_CONFIG_PATH": str(p)})
