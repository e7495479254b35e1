"""Configuration files written the way FlexKV's documentation shows them (its current flat
YAML/JSON and the older nested ``cache_config`` form) start FlexKv: the keys that mean
something here set the engine's values, the others are named in one warning each."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

import flexkv
from flexkv.config import engine_document, load_config
from flexkv.integration.vllm import _config

# FlexKV: docs/vllm_adapter/README_en.md, example 2 (two SSDs).
FLAT_YAML = """\
cpu_cache_gb: 32
ssd_cache_gb: 1024
ssd_cache_dir: /data0/flexkv_ssd/;/data1/flexkv_ssd/
enable_gds: false
"""

# FlexKV: docs/flexkv_config_reference/README_en.md (JSON form) plus advanced keys, which a
# file names without the FLEXKV_ prefix.
FLAT_JSON = {"cpu_cache_gb": 32, "ssd_cache_gb": 1024, "ssd_cache_dir": "/data/flexkv_ssd/", "enable_gds": False,
             "evict_ratio": 0.05, "index_accel": 1, "server_client_mode": 1, "max_file_size_gb": 64,
             "enable_mps": 0}

# FlexKV 0.x / TensorRT-LLM example (examples/trt_adaption/flexkv_config.json of Nov 2025).
NESTED_JSON = {
    "enable_flexkv": True,
    "server_recv_port": "ipc:///tmp/flexkv_test",
    "cache_config": {
        "enable_cpu": True, "enable_ssd": True, "enable_remote": False, "use_gds": False, "enable_trace": False,
        "ssd_cache_iouring_entries": 512, "num_cpu_blocks": 233000, "num_ssd_blocks": 4096000,
        "ssd_cache_dir": "/data/flexkv_ssd/", "evict_ratio": 0.05, "index_accel": True,
    },
    "num_log_interval_requests": 1000,
}


def vllm_config(block_size=16):
    model = SimpleNamespace(model="m", dtype="torch.bfloat16", use_mla=False,
                            get_num_layers=lambda pc: 4, get_num_kv_heads=lambda pc: 2, get_head_size=lambda: 64)
    return SimpleNamespace(
        model_config=model,
        cache_config=SimpleNamespace(block_size=block_size, cache_dtype="auto"),
        parallel_config=SimpleNamespace(tensor_parallel_size=1, world_size=1),
        kv_transfer_config=SimpleNamespace(kv_connector_extra_config={}, engine_id="e"),
    )


def warned(caplog) -> list:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_flat_yaml_from_flexkvs_vllm_guide(tmp_path, caplog):
    p = tmp_path / "flexkv_config.yml"
    p.write_text(FLAT_YAML)
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg, _ = _config.build(vllm_config(), env={"FLEXKV_CONFIG_PATH": str(p)})
    assert cfg["cpu_cache_gb"] == 32.0 and cfg["ssd_cache_gb"] == 1024.0
    assert cfg["ssd_cache_dir"] == "/data0/flexkv_ssd/;/data1/flexkv_ssd/"
    assert "enable_gds" not in cfg
    assert warned(caplog) == []  # every key of the guide means something here


def test_flat_json_with_advanced_keys_names_each_ignored_key_once(tmp_path, caplog):
    p = tmp_path / "flexkv_config.json"
    p.write_text(json.dumps(FLAT_JSON))
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = load_config(env={"FLEXKV_CONFIG_PATH": str(p)})
    assert cfg == {"cpu_cache_gb": 32.0, "ssd_cache_gb": 1024.0, "ssd_cache_dir": "/data/flexkv_ssd/"}
    messages = warned(caplog)
    for key in ("evict_ratio", "index_accel", "server_client_mode", "max_file_size_gb"):
        naming = [m for m in messages if key in m]
        assert len(naming) == 1 and "no effect" in naming[0], (key, messages)
    assert not any("enable_mps" in m for m in messages)  # a feature switched off is off here too


def test_nested_cache_config_format(tmp_path, caplog):
    p = tmp_path / "flexkv_config.json"
    p.write_text(json.dumps(NESTED_JSON))
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg, _ = _config.build(vllm_config(), env={"FLEXKV_CONFIG_PATH": str(p)})
    assert cfg["num_cpu_blocks"] == 233000 and cfg["ssd_cache_dir"] == "/data/flexkv_ssd/"
    # num_ssd_blocks becomes the engine's ssd_cache_gb over vLLM's block: 4 layers x 2 heads x
    # 64 x K,V x 16 tokens x bf16 = 32 KiB (already a multiple of the SSD alignment).
    doc = engine_document(cfg)
    assert "num_ssd_blocks" not in doc and doc["ssd_cache_gb"] == 4096000 * 32768 / 2**30
    messages = warned(caplog)
    for key in ("server_recv_port", "num_log_interval_requests", "ssd_cache_iouring_entries", "evict_ratio",
                "index_accel"):
        assert sum(key in m for m in messages) == 1, (key, messages)
    # Switches that are off, and enable_cpu/enable_ssd/enable_remote, are honoured, not warned about.
    for key in ("enable_trace", "use_gds", "enable_cpu", "enable_ssd", "enable_remote", "enable_flexkv"):
        assert not any(key in m for m in messages), (key, messages)


def test_nested_model_and_cache_sections_drive_a_real_engine(tmp_path, caplog):
    # FlexKV's benchmark files: ModelConfig + CacheConfig sections (sizes shrunk to fit a test).
    p = tmp_path / "example_config.yml"
    p.write_text(f"""\
ModelConfig:
  num_layers: 2
  num_kv_heads: 2
  head_size: 32
  dtype: bfloat16
  kv_dim: 2
  tp_size: 1
  dp_size: 1
CacheConfig:
  enable_cpu: true
  enable_ssd: true
  tokens_per_block: 16
  num_cpu_blocks: 16
  num_ssd_blocks: 24
  ssd_cache_dir: ["{tmp_path / 'ssd0'}", "{tmp_path / 'ssd1'}"]
  gpu_kv_layout_type: LAYERWISE
  use_hugepage_cpu_buffer: false
""")
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        with flexkv.KVManager(load_config(env={"FLEXKV_CONFIG_PATH": str(p)})) as m:
            s = m.stats()
    assert s["cpu_blocks_total"] == 16 and s["ssd_blocks_total"] == 24
    assert s["block_bytes"] == 2 * 2 * 32 * 2 * 16 * 2  # layers x heads x head_size x K,V x tokens x bf16
    messages = warned(caplog)
    assert any("dp_size" in m and "no effect" in m for m in messages)
    assert any("gpu_kv_layout_type" in m for m in messages)


def test_a_key_given_twice_with_different_values_is_an_error(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"num_cpu_blocks": 8, "cache_config": {"num_cpu_blocks": 16}}))
    with pytest.raises(flexkv.ConfigError, match="num_cpu_blocks.*different values"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(p)})
