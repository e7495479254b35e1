"""FlexKV's tier switches are honoured: enable_ssd and enable_remote turn tiers off whatever
else is set, turning one on needs its size or address, and FlexKV's redis_host/redis_port
alone (its p2p metadata server) never make that Redis a cache tier."""

from __future__ import annotations

import logging

import pytest

import flexkv
from flexkv.config import normalize


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_enable_ssd_false_means_no_ssd_tier_even_with_a_size(caplog):
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = normalize({"enable_ssd": False, "ssd_cache_gb": 100, "num_ssd_blocks": 10, "ssd_cache_dir": "/x"})
    assert "ssd_cache_gb" not in cfg and "num_ssd_blocks" not in cfg
    assert any("enable_ssd is false" in m for m in warnings_of(caplog))


def test_enable_ssd_false_really_starts_no_ssd_tier(tmp_path):
    with flexkv.KVManager({"enable_ssd": "false", "ssd_cache_gb": 1, "ssd_cache_dir": str(tmp_path),
                           "num_cpu_blocks": 4, "block_bytes": 4096, "use_hugepage_cpu_buffer": False}) as m:
        assert m.stats()["ssd_blocks_total"] == 0
    assert list(tmp_path.iterdir()) == []


def test_enable_ssd_true_needs_a_size():
    with pytest.raises(flexkv.ConfigError, match="enable_ssd.*no size"):
        normalize({"enable_ssd": True})
    assert normalize({"enable_ssd": True, "ssd_cache_gb": 2})["ssd_cache_gb"] == 2.0


def test_enable_remote_false_means_no_remote_tier(caplog):
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = normalize({"enable_remote": False, "remote_url": "redis://h:1", "redis_password": "pw"})
    assert not {"remote_url", "redis_password"} & set(cfg)
    assert any("enable_remote is false" in m and "remote_url" in m for m in warnings_of(caplog))


def test_enable_remote_true_without_an_address_is_a_clear_error():
    with pytest.raises(flexkv.ConfigError, match="enable_remote.*no remote address.*remote_url"):
        normalize({"enable_remote": True})
    # FlexKV's PCFS keys do not make an address here, and the message says why.
    with pytest.raises(flexkv.ConfigError, match="remote_file_prefix.*PCFS"):
        normalize({"enable_remote": True, "remote_file_prefix": "/pcfs/f", "remote_file_num": 4})


def test_enable_remote_true_uses_flexkvs_redis_keys():
    cfg = normalize({"enable_remote": True, "redis_host": "10.0.0.5", "redis_password": "pw"})
    assert cfg["redis_host"] == "10.0.0.5" and cfg["redis_port"] == 6379 and cfg["redis_password"] == "pw"
    assert normalize({"enable_remote": True, "remote_url": "redis://h:7000"})["remote_url"] == "redis://h:7000"


def test_redis_keys_without_the_gate_do_not_switch_redis_on(caplog):
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        cfg = normalize({"redis_host": "10.0.0.5", "redis_port": 6379, "redis_password": "pw"})
    assert not {"redis_host", "redis_port", "redis_password"} & set(cfg)
    assert any("without enable_remote" in m for m in warnings_of(caplog))
    with flexkv.KVManager({"redis_host": "127.0.0.1", "redis_port": 6379, "num_cpu_blocks": 4, "block_bytes": 4096,
                           "use_hugepage_cpu_buffer": False}) as m:
        assert m.stats()["remote_enabled"] is False


def test_remote_url_alone_still_switches_the_tier_on():
    # remote_url is FlexKv's own key: naming a URL is asking for the tier.
    assert normalize({"remote_url": "redis://h:1"})["remote_url"] == "redis://h:1"


@pytest.mark.parametrize("key", ["enable_gds", "use_gds", "enable_nixl", "enable_p2p_cpu", "enable_p2p_ssd",
                                 "enable_3rd_remote", "enable_kv_sharing", "use_mooncake_store_backend"])
def test_features_missing_here_are_errors_when_on_and_silent_when_off(key, caplog):
    with pytest.raises(flexkv.ConfigError, match=key):
        normalize({key: True})
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        normalize({key: "false"})
    assert warnings_of(caplog) == []


def test_the_cpu_tier_cannot_be_turned_off():
    with pytest.raises(flexkv.ConfigError, match="enable_cpu"):
        normalize({"enable_cpu": False})
