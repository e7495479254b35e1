"""flexkv check against Redis: reachable with the configured credentials, its memory limit and
eviction policy judged, a server that is down or never answers failing within the timeout, and
no password ever printed."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from cli_support import flexkv, flexkv_json
from redis_support import REDIS_SERVER, RedisServer

from flexkv.cli.checks.resp import RespClient, RespError

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(REDIS_SERVER), reason="redis-server not installed")
PASSWORD = "pw-7f3a9-do-not-print"


def check(tmp_path, *extra, expect=0, **keys):
    path = tmp_path / "flexkv.json"
    path.write_text(json.dumps({"num_cpu_blocks": 16, "block_bytes": 4096, "use_hugepage_cpu_buffer": False, **keys}))
    out = flexkv("check", "--config", path, "--json", *extra)
    assert PASSWORD not in out.stdout + out.stderr
    assert out.returncode == expect, out.stdout + out.stderr
    return [c for c in json.loads(out.stdout)["checks"] if c["name"] == "remote"]


def test_a_protected_evicting_redis_is_ok(tmp_path):
    with RedisServer(password=PASSWORD, maxmemory="64mb", maxmemory_policy="allkeys-lru") as r:
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}", redis_password=PASSWORD)
        assert c["status"] == "ok" and ("Redis " in c["message"] or "Valkey " in c["message"])
        assert "64 MiB" in c["message"] and "allkeys-lru" in c["message"]
        (c,) = check(tmp_path, remote_url=r.url)  # the password in the URL: shown masked
        assert c["status"] == "ok" and "redis://:***@127.0.0.1" in c["message"]


def test_an_acl_user_and_a_user_without_config_rights(tmp_path):
    with RedisServer(maxmemory="32mb", maxmemory_policy="allkeys-lru") as r:
        r.cli("ACL", "SETUSER", "kv", "on", f">{PASSWORD}", "~*", "+@all")
        r.cli("ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~*", "+@all", "-config")
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}", remote_user="kv", redis_password=PASSWORD)
        assert c["status"] == "ok"
        (c,) = check(tmp_path, remote_url=f"redis://app:{PASSWORD}@127.0.0.1:{r.port}")
        assert c["status"] == "warn" and "cannot be read" in c["message"] and "NOPERM" in c["message"]


def test_wrong_or_missing_credentials_fail(tmp_path):
    with RedisServer(password=PASSWORD, maxmemory="64mb", maxmemory_policy="allkeys-lru") as r:
        (c,) = check(tmp_path, remote_url=f"redis://:wrong-{PASSWORD}@127.0.0.1:{r.port}", expect=1)
        assert c["status"] == "fail" and "authentication refused (WRONGPASS)" in c["message"] and c["fix"]
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}", expect=1)
        assert c["status"] == "fail" and "NOAUTH" in c["message"] and "redis_password" in c["fix"]


def test_noeviction_and_no_limit_are_warnings(tmp_path):
    with RedisServer(maxmemory="64mb", maxmemory_policy="noeviction") as r:
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}")
        assert c["status"] == "warn" and "noeviction" in c["message"] and "allkeys-lru" in c["fix"]
        r.cli("CONFIG", "SET", "maxmemory", "0")
        r.cli("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}")
        assert c["status"] == "warn" and "no memory limit" in c["message"]
        r.cli("CONFIG", "SET", "maxmemory", "64mb")
        r.cli("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}")
        assert c["status"] == "warn" and "expiry" in c["message"]
        (c,) = check(tmp_path, remote_url=f"redis://127.0.0.1:{r.port}", remote_ttl_s=3600)
        assert c["status"] == "ok"


def test_redis_down_fails_and_remote_url_overrides_the_configuration(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    (c,) = check(tmp_path, expect=1, remote_url=f"redis://127.0.0.1:{port}")
    assert c["status"] == "fail" and "not reachable" in c["message"] and "start Redis" in c["fix"]
    with RedisServer(maxmemory="16mb", maxmemory_policy="allkeys-lru") as r:
        (c,) = check(tmp_path, "--remote-url", f"redis://127.0.0.1:{r.port}", remote_url=f"redis://127.0.0.1:{port}")
        assert c["status"] == "ok"


def test_a_server_that_never_answers_fails_within_the_timeout(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    try:
        t0 = time.monotonic()
        (c,) = check(tmp_path, expect=1, remote_url=f"redis://127.0.0.1:{listener.getsockname()[1]}",
                     remote_timeout_ms=300)
        assert c["status"] == "fail" and "timed out" in c["message"]
        assert time.monotonic() - t0 < 20  # the child process, the library and one 0.3 s wait
    finally:
        listener.close()


def test_resp_client_speaks_resp2():
    with RedisServer() as r, RespClient("127.0.0.1", r.port, 2.0) as c:
        assert c.command("PING") == "PONG"
        assert c.command("SET", "k", "v\r\nwith newline") == "OK"
        assert c.command("GET", "k") == "v\r\nwith newline"
        assert c.command("GET", "missing") is None
        assert c.command("INCR", "n") == 1
        assert c.command("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
        with pytest.raises(RespError, match="ERR"):
            c.command("NO-SUCH-COMMAND")
