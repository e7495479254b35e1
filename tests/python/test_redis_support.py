"""The throwaway-Redis helpers that the remote-tier tests and benchmarks build on."""

from __future__ import annotations

import os
import subprocess

import pytest

if not os.path.exists("/usr/bin/redis-server"):
    pytest.skip("/usr/bin/redis-server missing: install the Debian packages redis-server and redis-tools",
                allow_module_level=True)

from redis_support import RedisCluster, RedisServer, free_port  # noqa: E402


def test_free_port_is_bindable_and_leaves_room_for_cluster_bus():
    assert 0 < free_port() < 65536
    p = free_port(cluster_bus=True)
    assert p + 10000 < 65536


def test_single_server_set_get_stop():
    s = RedisServer()
    try:
        assert s.url == f"redis://127.0.0.1:{s.port}"
        assert s.cli("ping") == "PONG"
        assert s.cli("set", "k", "v") == "OK"
        assert s.cli("get", "k") == "v"
        proc = s.proc
    finally:
        s.stop()
    assert proc.returncode is not None and not s.running()
    assert not os.path.exists(s.dir)  # its temp dir went with it


def test_context_manager_stops():
    with RedisServer() as s:
        proc = s.proc
        assert s.cli("dbsize") == "0"
    assert proc.poll() is not None


def test_password_required():
    with RedisServer(password="s3cret") as s:
        assert s.url == f"redis://:s3cret@127.0.0.1:{s.port}"
        assert s.cli("set", "k", "v") == "OK"  # .cli authenticates
        anon = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(s.port), "get", "k"],
                              capture_output=True, text=True, timeout=10)
        assert "NOAUTH" in anon.stdout  # redis-cli prints error replies and still exits 0


def test_kill_and_restart_same_port():
    with RedisServer() as s:
        port, pid = s.port, s.pid
        s.cli("set", "k", "v")
        s.kill()
        assert not s.running()
        s.restart()
        assert (s.port, s.cli("ping")) == (port, "PONG")
        assert s.pid != pid
        assert s.cli("get", "k") == ""  # nothing persisted: --save '' --appendonly no
        s.restart()  # restart of a running server stops it first
        assert s.cli("ping") == "PONG"


def test_maxmemory_settings_applied():
    with RedisServer(maxmemory="64mb", maxmemory_policy="allkeys-lru") as s:
        assert s.cli("config", "get", "maxmemory").splitlines() == ["maxmemory", str(64 << 20)]
        assert s.cli("config", "get", "maxmemory-policy").splitlines() == ["maxmemory-policy", "allkeys-lru"]


def test_three_node_cluster():
    with RedisCluster(nodes=3) as c:
        assert c.url == ",".join(f"redis://127.0.0.1:{p}" for p in c.ports)
        assert len(c.urls) == 3
        for s in c.servers:
            assert "cluster_state:ok" in s.cli("cluster", "info")
        keys = [f"key-{i}" for i in range(30)]
        for k in keys:
            assert c.cli("set", k, f"v-{k}") == "OK"  # -c follows MOVED to the owning node
        for k in keys:
            assert c.cli("get", k) == f"v-{k}"
        # The keys spread over the nodes: every node owns some, so redirects really happened.
        sizes = [int(s.cli("dbsize")) for s in c.servers]
        assert sum(sizes) == len(keys) and all(n > 0 for n in sizes), sizes
        procs = [s.proc for s in c.servers]
    assert all(p.poll() is not None for p in procs)
