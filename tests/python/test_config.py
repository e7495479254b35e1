"""FlexKV-style configuration: files, env vars, overrides and clear validation errors."""

from __future__ import annotations

import json

import pytest

import flexkv
from flexkv.config import load_config, normalize


def test_env_vars_are_read_without_a_file():
    cfg = load_config(env={"FLEXKV_CPU_CACHE_GB": "2", "FLEXKV_TOKENS_PER_BLOCK": "32",
                           "FLEXKV_USE_HUGEPAGE_CPU_BUFFER": "0"})
    assert cfg["cpu_cache_gb"] == 2.0 and cfg["tokens_per_block"] == 32
    assert cfg["use_hugepage_cpu_buffer"] is False


def test_default_cpu_size_is_flexkvs():
    assert load_config(env={})["cpu_cache_gb"] == 16.0


def test_file_wins_and_env_user_keys_are_ignored(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"cpu_cache_gb": 3, "tokens_per_block": 16}))
    cfg = load_config(env={"FLEXKV_CONFIG_PATH": str(p), "FLEXKV_CPU_CACHE_GB": "9"})
    assert cfg["cpu_cache_gb"] == 3.0


def test_yaml_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("cpu_cache_gb: 4\nssd_cache_gb: 0\nssd_cache_dir: /tmp/x\nenable_gds: false\n")
    cfg = load_config({"cpu_cache_gb": 1.5}, env={"FLEXKV_CONFIG_PATH": str(p)})
    assert cfg == {"cpu_cache_gb": 1.5, "ssd_cache_gb": 0.0, "ssd_cache_dir": "/tmp/x"}


@pytest.mark.parametrize("raw, key", [
    ({"cpu_cache_gb": 0}, "cpu_cache_gb"),
    ({"cpu_cache_gb": "lots"}, "cpu_cache_gb"),
    ({"tokens_per_block": 1.5}, "tokens_per_block"),
    ({"num_cpu_blocks": -3}, "num_cpu_blocks"),
    ({"mystery": 1}, "mystery"),
    ({"ssd_cache_gb": -1}, "ssd_cache_gb"),
    ({"enable_gds": True}, "enable_gds"),
    ({"tp_size": 2, "tp_rank": 2}, "tp_rank"),
    ({"use_mla": "perhaps"}, "use_mla"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(flexkv.ConfigError, match=key):
        normalize(raw)


def test_missing_or_broken_files_are_clear(tmp_path):
    with pytest.raises(flexkv.ConfigError, match="does not exist"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(tmp_path / "none.json")})
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(flexkv.ConfigError, match="cannot parse"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(bad)})
    odd = tmp_path / "c.toml"
    odd.write_text("")
    with pytest.raises(flexkv.ConfigError, match=r"\.json, \.yml or \.yaml"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(odd)})
    lst = tmp_path / "l.json"
    lst.write_text("[1, 2]")
    with pytest.raises(flexkv.ConfigError, match="mapping"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(lst)})


def test_manager_reads_env(monkeypatch):
    monkeypatch.setenv("FLEXKV_NUM_CPU_BLOCKS", "8")
    monkeypatch.delenv("FLEXKV_CONFIG_PATH", raising=False)
    with flexkv.KVManager(block_bytes=128, use_hugepage_cpu_buffer=False) as m:
        assert m.stats()["cpu_blocks_total"] == 8
