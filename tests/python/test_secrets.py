"""Secrets never leave the configuration: ``redis_password``, ``secret`` and the password in a
``remote_url`` appear in no log record, exception text (with its causes), stats document or
redacted config, whether the engine runs, warns about an unreachable Redis, or refuses the
configuration."""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import socket
import traceback
import uuid

import pytest

import flexkv
from flexkv.config import load_config, normalize, redact_url, redacted

PASSWORD = "pw-" + uuid.uuid4().hex
SECRET = "sec-" + uuid.uuid4().hex
URL_PASSWORD = "up-" + uuid.uuid4().hex
SECRETS = (PASSWORD, SECRET, URL_PASSWORD)
BB, NB = 4096, 8


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_of(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))  # causes included


@pytest.fixture
def everything_logged(caplog):
    """Every record at every level, formatted as a handler would print it."""
    with caplog.at_level(logging.DEBUG):
        yield lambda: "\n".join(logging.Formatter("%(name)s %(levelname)s %(message)s").format(r) for r in caplog.records)


def assert_clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text


@pytest.mark.parametrize("url, shown", [
    ("redis://user:pw@h:6379", "redis://user:***@h:6379"),
    ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ("rediss://pw@h:6380", "rediss://***@h:6380"),
    ("redis://a:p1@h1:1,redis://b:p2@h2:2", "redis://a:***@h1:1,redis://b:***@h2:2"),
    ("redis://h:1?password=pw", "redis://h:1?password=***"),
    ("redis://h:6379", "redis://h:6379"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["redis://:p@ss-1@h:1", "redis://:pa,ss-1@h:1", "redis://:a://ss-1@h:1",
                                 "redis//:ss-1@h"])
def test_redact_url_leaks_no_part_of_a_malformed_password(url):
    assert "ss-1" not in redact_url(url)


def test_redacted_masks_secrets_in_flat_and_nested_configs():
    cfg = {"redis_password": PASSWORD, "secret": SECRET, "remote_url": f"redis://u:{URL_PASSWORD}@h:1",
           "cache_config": {"redis_password": PASSWORD}, "mooncake_metadata_server_auth": SECRET,
           "cpu_cache_gb": 4, "model_name": "m@x"}
    out = redacted(cfg)
    assert_clean(json.dumps(out))
    assert out["redis_password"] == "***" and out["remote_url"] == "redis://u:***@h:1"
    assert out["cpu_cache_gb"] == 4 and out["model_name"] == "m@x"
    assert redacted({"secret": ""})["secret"] == ""  # shows that none was set
    assert cfg["redis_password"] == PASSWORD  # the original is untouched


def test_a_workload_with_secrets_and_an_unreachable_redis_logs_no_secret(tmp_path, monkeypatch, everything_logged):
    port = closed_port()
    p = tmp_path / "flexkv.yml"
    p.write_text(f"""\
num_cpu_blocks: {NB}
block_bytes: {BB}
use_hugepage_cpu_buffer: false
secret: {SECRET}
remote_url: redis://flexkv:{URL_PASSWORD}@127.0.0.1:{port}
redis_password: {PASSWORD}
remote_timeout_ms: 300
evict_ratio: 0.05
""")
    monkeypatch.setenv("FLEXKV_CONFIG_PATH", str(p))
    monkeypatch.setenv("FLEXKV_SECRT", "typo")  # a warning about a variable, next to secret ones
    buf = (ctypes.c_uint8 * (NB * BB))()
    with flexkv.KVManager() as m:
        m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(buf), BB, BB)], NB)
        tokens = list(range(3 * 16 + 1))
        assert m.put("r1", tokens, [0, 1, 2])
        assert not m.get("r2", tokens, [3, 4, 5])
        stats = json.dumps(m.stats())
        config_line = json.dumps(redacted(m.config))
    logged = everything_logged()
    assert "not reachable" in logged and f"127.0.0.1:{port}" in logged  # the engine did warn, by host
    assert "evict_ratio" in logged and "FLEXKV_SECRT" in logged
    assert_clean(logged + stats + config_line)


@pytest.mark.parametrize("raw", [
    {"remote_url": f"redis://user:{URL_PASSWORD}@127.0.0.1"},  # no port: the engine refuses it
    {"remote_url": f"redis://user:{URL_PASSWORD},x@127.0.0.1:1,redis:/broken"},
    {"remote_url": f"http://:{URL_PASSWORD}@127.0.0.1:1"},
])
def test_a_malformed_remote_url_is_refused_without_its_password(raw, everything_logged):
    cfg = {"num_cpu_blocks": 4, "block_bytes": BB, "use_hugepage_cpu_buffer": False, **raw}
    with pytest.raises(flexkv.ConfigError, match="remote_url") as e:
        flexkv.KVManager(cfg).close()
    assert "***" in str(e.value)
    assert_clean(text_of(e.value) + everything_logged())


@pytest.mark.parametrize("raw", [{"redis_password": 12345}, {"secret": ["a", SECRET]}, {"remote_url": 7}])
def test_bad_secret_values_are_refused_without_echoing_them(raw):
    with pytest.raises(flexkv.ConfigError) as e:
        normalize(raw)
    assert "12345" not in text_of(e.value)
    assert_clean(text_of(e.value))


def test_a_yaml_error_does_not_quote_the_password_line(tmp_path):
    p = tmp_path / "broken.yml"
    p.write_text(f"cpu_cache_gb: 2\nredis_password: {PASSWORD}: {SECRET}\n")
    with pytest.raises(flexkv.ConfigError, match="line 2") as e:
        load_config(env={"FLEXKV_CONFIG_PATH": str(p)})
    assert_clean(text_of(e.value))


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_refused_credentials_do_not_echo_the_password(everything_logged):
    from redis_support import RedisServer

    with RedisServer(password="right-one") as r:
        port = int(r.url.rsplit(":", 1)[1])
        for cfg in ({"remote_url": f"redis://:{URL_PASSWORD}@127.0.0.1:{port}"},
                    {"enable_remote": True, "redis_port": port, "redis_password": PASSWORD}):
            with pytest.raises(flexkv.ConfigError, match="refused the credentials") as e:
                flexkv.KVManager({"num_cpu_blocks": 4, "block_bytes": BB, "use_hugepage_cpu_buffer": False,
                                  "remote_timeout_ms": 1000, **cfg}).close()
            assert_clean(text_of(e.value))
    assert_clean(everything_logged())
