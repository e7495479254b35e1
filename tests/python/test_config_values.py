"""Values are taken as what they are: a number key refuses a boolean (YAML's
``cpu_cache_gb: true`` is not 1 GiB), a boolean key takes true/false, 0/1 and their usual words
but no other number, and FlexKV's spellings (path lists, kv_cache_dtype, kv_dim) map over."""

from __future__ import annotations

import pytest

import flexkv
from flexkv.config import engine_document, load_config, normalize


@pytest.mark.parametrize("key", ["cpu_cache_gb", "ssd_cache_gb", "num_cpu_blocks", "tokens_per_block",
                                 "redis_port", "max_memory_fraction", "num_ssd_blocks", "transfer_threads"])
@pytest.mark.parametrize("value", [True, False, "true"])
def test_numbers_refuse_booleans(key, value):
    with pytest.raises(flexkv.ConfigError, match=key):
        normalize({key: value})


def test_yaml_true_for_a_size_is_an_error(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("cpu_cache_gb: true\n")
    with pytest.raises(flexkv.ConfigError, match="cpu_cache_gb.*number"):
        load_config(env={"FLEXKV_CONFIG_PATH": str(p)})


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("False", False), ("off", False),
                                             (1, True), (0, False), ("1", True), (" yes ", True)])
def test_booleans_take_booleans_and_their_words(value, expected):
    assert normalize({"use_mla": value})["use_mla"] is expected


@pytest.mark.parametrize("value", [2, -1, 0.5, "maybe", "", [True]])
def test_booleans_refuse_other_values(value):
    with pytest.raises(flexkv.ConfigError, match="use_hugepage_cpu_buffer"):
        normalize({"use_hugepage_cpu_buffer": value})


def test_null_means_not_set():
    # YAML's "key:" and FlexKV's dumped Optional fields ("num_remote_blocks": null).
    assert normalize({"ssd_cache_dir": None, "num_remote_blocks": None, "cpu_cache_gb": None}) == {"cpu_cache_gb": 16.0}
    with pytest.raises(flexkv.ConfigError, match="cpu_cach_gb"):
        normalize({"cpu_cach_gb": None})  # a typo is still a typo


def test_numbers_from_strings_as_env_vars_give_them():
    cfg = load_config(env={"FLEXKV_CPU_CACHE_GB": "1.5", "FLEXKV_NUM_CPU_BLOCKS": "8", "FLEXKV_CUDA_BATCH_COPY": "false"})
    assert cfg["cpu_cache_gb"] == 1.5 and cfg["num_cpu_blocks"] == 8 and cfg["cuda_batch_copy"] is False
    with pytest.raises(flexkv.ConfigError, match=r"num_cpu_blocks.*FLEXKV_NUM_CPU_BLOCKS.*integer"):
        load_config(env={"FLEXKV_NUM_CPU_BLOCKS": "8.5"})


def test_ssd_cache_dir_as_a_list_or_semicolons():
    assert normalize({"ssd_cache_dir": ["/a/", " /b/ "]})["ssd_cache_dir"] == "/a/;/b/"
    assert normalize({"ssd_cache_dir": "/a/;/b/"})["ssd_cache_dir"] == "/a/;/b/"
    with pytest.raises(flexkv.ConfigError, match="ssd_cache_dir"):
        normalize({"ssd_cache_dir": []})


@pytest.mark.parametrize("value, dtype", [("fp8", "fp8"), ("float8", "fp8"), ("BF16", "bf16"), ("e4m3", "e4m3")])
def test_kv_cache_dtype_overrides_the_model_dtype(value, dtype):
    assert normalize({"dtype": "bfloat16", "kv_cache_dtype": value})["dtype"] == dtype


def test_kv_cache_dtype_auto_keeps_the_dtype_and_nvfp4_is_refused():
    assert normalize({"dtype": "bfloat16", "kv_cache_dtype": "auto"})["dtype"] == "bfloat16"
    with pytest.raises(flexkv.ConfigError, match="kv_cache_dtype.*NVFP4"):
        normalize({"kv_cache_dtype": "nvfp4"})


def test_kv_dim_is_flexkvs_use_mla():
    assert normalize({"kv_dim": 1})["use_mla"] is True
    assert normalize({"kv_dim": 2})["use_mla"] is False
    with pytest.raises(flexkv.ConfigError, match="kv_dim"):
        normalize({"kv_dim": 3})
    with pytest.raises(flexkv.ConfigError, match="kv_dim"):
        normalize({"kv_dim": 1, "use_mla": False})


def test_num_ssd_blocks_becomes_ssd_cache_gb_in_whole_aligned_slots():
    # 5000-byte blocks take 8192-byte SSD slots: 10 blocks = 80 KiB.
    doc = engine_document(normalize({"block_bytes": 5000, "num_ssd_blocks": 10}))
    assert doc["ssd_cache_gb"] == 10 * 8192 / 2**30 and "num_ssd_blocks" not in doc
    with pytest.raises(flexkv.ConfigError, match="num_ssd_blocks.*block size"):
        engine_document(normalize({"num_ssd_blocks": 10}))


def test_num_ssd_blocks_sizes_a_real_ssd_tier(tmp_path):
    with flexkv.KVManager({"block_bytes": 5000, "num_ssd_blocks": 10, "ssd_cache_dir": str(tmp_path),
                           "num_cpu_blocks": 4, "use_hugepage_cpu_buffer": False}) as m:
        assert m.stats()["ssd_blocks_total"] == 10


def test_unknown_keys_suggest_the_closest_one():
    with pytest.raises(flexkv.ConfigError, match="unknown configuration key 'evict_ration'.*'evict_ratio'"):
        normalize({"evict_ration": 0.1})
