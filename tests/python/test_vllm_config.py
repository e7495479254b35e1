"""The engine config derived from a vLLM config, with extra_config overrides and clear conflicts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import flexkv
from flexkv.integration.vllm import _config


def vllm_config(extra=None, block_size=16, cache_dtype="auto", tp=1):
    model = SimpleNamespace(model="meta-llama/Llama-3-8B", dtype="torch.bfloat16", use_mla=False,
                            get_num_layers=lambda pc: 32, get_num_kv_heads=lambda pc: 8, get_head_size=lambda: 128)
    return SimpleNamespace(
        model_config=model,
        cache_config=SimpleNamespace(block_size=block_size, cache_dtype=cache_dtype),
        parallel_config=SimpleNamespace(tensor_parallel_size=tp, world_size=tp),
        kv_transfer_config=SimpleNamespace(kv_connector_extra_config=extra or {}, engine_id="e1"),
    )


def test_facts_come_from_vllm():
    cfg, opts = _config.build(vllm_config({"cpu_cache_gb": 2}), env={})
    assert cfg["tokens_per_block"] == 16 and cfg["dtype"] == "bfloat16" and cfg["tp_size"] == 1
    assert cfg["num_layers"] == 32 and cfg["num_kv_heads"] == 8 and cfg["head_size"] == 128
    assert cfg["model_name"] == "meta-llama/Llama-3-8B" and cfg["cpu_cache_gb"] == 2.0
    assert opts.save_on_abort is False


def test_kv_cache_config_gives_block_bytes():
    spec = SimpleNamespace(page_size_bytes=65536)
    kcc = SimpleNamespace(num_blocks=100, kv_cache_groups=[SimpleNamespace(layer_names=["a", "b"], kv_cache_spec=spec)])
    cfg, _ = _config.build(vllm_config(), kcc, env={})
    assert cfg["block_bytes"] == 2 * 65536 and "num_layers" not in cfg


def test_fp8_cache_dtype_wins_over_model_dtype():
    cfg, _ = _config.build(vllm_config(cache_dtype="fp8_e4m3"), env={})
    assert cfg["dtype"] == "fp8_e4m3"


def test_extra_config_overrides_file(tmp_path):
    p = tmp_path / "f.json"
    p.write_text('{"cpu_cache_gb": 8, "secret": "s"}')
    cfg, opts = _config.build(vllm_config({"cpu_cache_gb": 1, "save_on_abort": "true"}),
                              env={"FLEXKV_CONFIG_PATH": str(p)})
    assert cfg["cpu_cache_gb"] == 1.0 and cfg["secret"] == "s" and opts.save_on_abort is True


def test_disagreeing_block_size_is_a_clear_error():
    with pytest.raises(flexkv.ConfigError, match="tokens_per_block is 32 but vLLM's is 16"):
        _config.build(vllm_config({"tokens_per_block": 32}), env={})


def test_missing_kv_transfer_config_and_bad_option():
    bad = vllm_config()
    bad.kv_transfer_config = None
    with pytest.raises(flexkv.ConfigError, match="kv_transfer_config"):
        _config.build(bad, env={})
    with pytest.raises(flexkv.ConfigError, match="save_on_abort|boolean"):
        _config.build(vllm_config({"save_on_abort": "maybe"}), env={})
