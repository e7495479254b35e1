"""FlexKV's environment variables: the master switch ENABLE_FLEXKV, FLEXKV_LOG_LEVEL, its
advanced variables (read with or without a config file), and one warning for a misspelt
FLEXKV_* name that says which known name was probably meant."""

from __future__ import annotations

import logging

import pytest

import flexkv
from flexkv.config import apply_log_level, flexkv_enabled, load_config


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture
def flexkv_level():
    logger = logging.getLogger("flexkv")
    before = logger.level
    yield logger
    logger.setLevel(before)


@pytest.mark.parametrize("value, enabled", [("0", False), ("false", False), ("1", True), ("", True)])
def test_enable_flexkv_env_var(value, enabled):
    assert flexkv_enabled(env={"ENABLE_FLEXKV": value}) is enabled
    assert flexkv_enabled(env={}) is True


def test_enable_flexkv_in_a_file_or_extra_config_when_the_env_var_is_unset(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"enable_flexkv": false, "cache_config": {"num_cpu_blocks": 8}}')
    assert flexkv_enabled(env={"FLEXKV_CONFIG_PATH": str(p)}) is False
    assert flexkv_enabled(env={"FLEXKV_CONFIG_PATH": str(p), "ENABLE_FLEXKV": "1"}) is True  # the env var decides
    assert flexkv_enabled(env={}, overrides={"enable_flexkv": "off"}) is False
    with pytest.raises(flexkv.ConfigError, match="ENABLE_FLEXKV"):
        flexkv_enabled(env={"ENABLE_FLEXKV": "perhaps"})


@pytest.mark.parametrize("value, level", [("DEBUG", logging.DEBUG), ("warning", logging.WARNING),
                                          ("ERROR", logging.ERROR), ("OFF", logging.CRITICAL + 10)])
def test_flexkv_log_level_sets_the_package_logger(flexkv_level, value, level):
    apply_log_level({"FLEXKV_LOG_LEVEL": value})
    assert flexkv_level.level == level
    assert logging.getLogger("flexkv.vllm").getEffectiveLevel() == level


def test_a_bad_log_level_is_a_warning_and_changes_nothing(flexkv_level, caplog):
    flexkv_level.setLevel(logging.INFO)
    with caplog.at_level(logging.WARNING, logger="flexkv.config"):
        apply_log_level({"FLEXKV_LOG_LEVEL": "LOUD"})
    assert flexkv_level.level == logging.INFO
    assert any("FLEXKV_LOG_LEVEL" in m and "LOUD" in m for m in warnings_of(caplog))


def test_log_level_is_applied_when_the_config_is_loaded(flexkv_level):
    load_config(env={"FLEXKV_LOG_LEVEL": "ERROR"})
    assert flexkv_level.level == logging.ERROR


def test_a_misspelt_variable_names_the_closest_known_one_once(caplog):
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = load_config(env={"FLEXKV_CPU_CACHE_G": "2", "FLEXKV_SSD_CACHEDIR": "/x"})
    assert cfg["cpu_cache_gb"] == 16.0  # the misspelt value is not used
    messages = warnings_of(caplog)
    assert sum("FLEXKV_CPU_CACHE_G " in m and "FLEXKV_CPU_CACHE_GB?" in m for m in messages) == 1
    assert sum("FLEXKV_SSD_CACHEDIR" in m and "FLEXKV_SSD_CACHE_DIR?" in m for m in messages) == 1


def test_flexkvs_advanced_variables_warn_once_and_apply_with_a_file(tmp_path, caplog):
    p = tmp_path / "c.yml"
    p.write_text("cpu_cache_gb: 2\n")
    env = {"FLEXKV_CONFIG_PATH": str(p), "FLEXKV_EVICT_RATIO": "0.05", "FLEXKV_INDEX_ACCEL": "1",
           "FLEXKV_EVICTION_POLICY": "lru"}
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = load_config(env=env)
    assert cfg == {"cpu_cache_gb": 2.0, "eviction_policy": "lru"}
    messages = warnings_of(caplog)
    for name in ("FLEXKV_EVICT_RATIO", "FLEXKV_INDEX_ACCEL"):
        assert sum(name in m and "no effect" in m for m in messages) == 1, messages
    with pytest.raises(flexkv.ConfigError, match="eviction_policy.*'lfu' is not supported"):
        flexkv.KVManager(load_config(env={"FLEXKV_EVICTION_POLICY": "lfu", "FLEXKV_NUM_CPU_BLOCKS": "4"}),
                         block_bytes=4096, use_hugepage_cpu_buffer=False)


def test_a_file_key_wins_over_an_advanced_variable(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("eviction_policy: lru\n")
    assert load_config(env={"FLEXKV_CONFIG_PATH": str(p), "FLEXKV_EVICTION_POLICY": "fifo"})["eviction_policy"] == "lru"


def test_user_variables_ignored_under_a_file_are_named(tmp_path, caplog):
    p = tmp_path / "c.yml"
    p.write_text("cpu_cache_gb: 2\n")
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = load_config(env={"FLEXKV_CONFIG_PATH": str(p), "FLEXKV_SSD_CACHE_GB": "64"})
    assert "ssd_cache_gb" not in cfg
    assert any("FLEXKV_SSD_CACHE_GB ignored" in m and "FLEXKV_CONFIG_PATH" in m for m in warnings_of(caplog))


def test_flexkvs_user_variables_map_without_a_file(caplog):
    env = {"FLEXKV_KV_CACHE_DTYPE": "fp8", "FLEXKV_ENABLE_NIXL": "0", "FLEXKV_HUGEPAGE_SIZE_BYTES": "2097152"}
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = load_config(env=env)
    assert cfg["dtype"] == "fp8" and "enable_nixl" not in cfg
    assert any("FLEXKV_HUGEPAGE_SIZE_BYTES" in m and "no effect" in m for m in warnings_of(caplog))
    with pytest.raises(flexkv.ConfigError, match=r"enable_gds' \(FLEXKV_ENABLE_GDS\): GPU Direct Storage is not supported"):
        load_config(env={"FLEXKV_ENABLE_GDS": "1"})
