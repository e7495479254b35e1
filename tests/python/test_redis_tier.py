"""The remote tier on a real redis-server (and a 3-node Redis Cluster) on loopback: sharing
between engines, fingerprints that never mix, faults (down at start, killed, restarted,
corrupted value, maxmemory eviction, wrong password) and reset."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import flexkv

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

from redis_support import RedisCluster, RedisServer  # noqa: E402

BS, BB, NB = 16, 4096, 64


class Engine:
    """A KVManager over a ctypes 'device' cache, talking to one remote store."""

    def __init__(self, url: str, **cfg) -> None:
        self.buf = (ctypes.c_uint8 * (NB * BB))()
        conf = {"num_cpu_blocks": 32, "block_bytes": BB, "tokens_per_block": BS, "use_hugepage_cpu_buffer": False,
                "remote_url": url, "model_name": "m", "remote_timeout_ms": 1000, "remote_lookup_budget_ms": 200}
        conf.update(cfg)
        self.m = flexkv.KVManager(conf)
        self.m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(self.buf), BB, BB)], NB)

    def fill(self, block: int, value: int) -> None:
        ctypes.memset(ctypes.addressof(self.buf) + block * BB, value, BB)

    def block(self, b: int) -> bytes:
        return bytes(self.buf[b * BB:(b + 1) * BB])

    def save(self, rid: str, tokens, blocks, value0: int = 1) -> None:
        for i, b in enumerate(blocks):
            self.fill(b, value0 + i)
        assert self.m.put(rid, tokens, blocks)
        deadline = time.time() + 10
        while self.m.stats()["remote_writes_pending"] and time.time() < deadline:
            time.sleep(0.01)

    def load(self, rid: str, tokens, blocks):
        """Returns (tokens loaded, failed block ids)."""
        for b in blocks:
            self.fill(b, 0)
        n = self.m.match(rid, tokens, 0)
        self.m.update_state_after_alloc(rid, blocks, n)
        failed = set()
        if n:
            self.m.launch_tasks()
            failed = self.m.wait_finished(rid, "recving", 10)
        self.m.request_finished(rid, None, (), save=False)
        return n, failed

    def close(self) -> None:
        self.m.close()


def toks(n_blocks: int, start: int = 0):
    return list(range(start, start + n_blocks * BS + 1))


@pytest.fixture
def redis():
    with RedisServer() as r:
        yield r


def test_blocks_saved_by_one_engine_are_loaded_by_another(redis):
    a, b = Engine(redis.url), Engine(redis.url)
    try:
        a.save("r", toks(4), [0, 1, 2, 3], value0=7)
        assert a.m.stats()["remote_blocks_written"] == 4
        n, failed = b.load("q", toks(4), [10, 11, 12, 13])
        assert (n, failed) == (4 * BS, set())
        for i in range(4):
            assert b.block(10 + i) == bytes([7 + i]) * BB
        assert b.m.stats()["remote_blocks_read"] == 4
        # The blocks came through b's CPU tier and stay cached there: no second remote read.
        assert b.load("q2", toks(4), [20, 21, 22, 23]) == (4 * BS, set())
        assert b.m.stats()["remote_blocks_read"] == 4
    finally:
        a.close(), b.close()


def test_loads_from_one_plain_server_are_received_straight_into_the_cpu_slots():
    # The user, password and database of the URL apply to the direct reads too; the bytes are
    # those saved, and the cluster test below goes through the cluster-aware client instead.
    with RedisServer(password="pw") as r:
        port = int(r.url.rsplit(":", 1)[1])
        url = f"redis://:pw@127.0.0.1:{port}/3"
        a, b = Engine(url), Engine(url)
        try:
            a.save("r", toks(4), [0, 1, 2, 3], value0=40)
            assert b.load("q", toks(4), [10, 11, 12, 13]) == (4 * BS, set())
            assert [b.block(10 + i) for i in range(4)] == [bytes([40 + i]) * BB for i in range(4)]
            assert b.m.stats()["remote_direct_read_batches"] >= 1
            assert r.cli("-n", "3", "DBSIZE").strip() == "4"
        finally:
            a.close(), b.close()


def test_another_process_is_served_from_redis(redis):
    code = textwrap.dedent(f"""
        import ctypes, time, flexkv
        buf = (ctypes.c_uint8 * ({NB} * {BB}))()
        m = flexkv.KVManager({{"num_cpu_blocks": 32, "block_bytes": {BB}, "tokens_per_block": {BS},
                              "use_hugepage_cpu_buffer": False, "remote_url": "{redis.url}", "model_name": "m"}})
        m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(buf), {BB}, {BB})], {NB})
        for i in range(3):
            ctypes.memset(ctypes.addressof(buf) + i * {BB}, 40 + i, {BB})
        assert m.put("r", list(range(3 * {BS} + 1)), [0, 1, 2])
        while m.stats()["remote_writes_pending"]:
            time.sleep(0.01)
        print(m.stats()["remote_blocks_written"])
        m.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "3", out.stderr
    b = Engine(redis.url)
    try:
        assert b.load("q", toks(3), [5, 6, 7]) == (3 * BS, set())
        assert [b.block(5 + i)[:1] for i in range(3)] == [bytes([40]), bytes([41]), bytes([42])]
    finally:
        b.close()


@pytest.mark.parametrize("other", [{"model_name": "other"}, {"dtype": "bfloat16"}, {"tp_size": 2, "tp_rank": 1},
                                   {"secret": "s"}])
def test_different_fingerprints_never_share(redis, other):
    a, b = Engine(redis.url), Engine(redis.url, **other)
    try:
        a.save("r", toks(2), [0, 1])
        assert b.load("q", toks(2), [10, 11]) == (0, set())
    finally:
        a.close(), b.close()


def test_redis_down_at_start_then_up(redis):
    port = redis.port if hasattr(redis, "port") else int(redis.url.rsplit(":", 1)[1])
    redis.stop()
    a = Engine(f"redis://127.0.0.1:{port}")
    try:
        st = a.m.stats()
        assert st["remote_enabled"] and not st["remote_connected"]
        assert any("not reachable" in w for w in st["warnings"])
        t0 = time.perf_counter()
        assert a.load("q", toks(2), [10, 11]) == (0, set())  # a miss, at once
        assert time.perf_counter() - t0 < 1.0
        assert a.m.put("r", toks(2), [0, 1])  # CPU still saves; the remote write is dropped
        redis.restart()
        deadline = time.time() + 15
        while not a.m.stats()["remote_connected"] and time.time() < deadline:
            time.sleep(0.1)
        assert a.m.stats()["remote_connected"]
        a.save("r2", toks(2, 5000), [2, 3])
        assert a.m.stats()["remote_blocks_written"] >= 2
    finally:
        a.close()


def test_redis_killed_mid_run_gives_misses_within_the_budget_and_recovers(redis):
    a, b = Engine(redis.url), Engine(redis.url, remote_lookup_budget_ms=50)
    try:
        a.save("r", toks(3), [0, 1, 2])
        redis.kill()
        time.sleep(0.2)
        t0 = time.perf_counter()
        n, failed = b.load("q", toks(3), [10, 11, 12])
        assert time.perf_counter() - t0 < 3.0
        # Either a miss at lookup time, or blocks that fail to load (recomputed): never wrong bytes.
        assert n == 0 or failed
        assert a.m.put("r2", toks(2, 9000), [4, 5])  # puts keep working locally
        redis.restart()
        deadline = time.time() + 15
        while not (a.m.stats()["remote_connected"] and b.m.stats()["remote_connected"]) and time.time() < deadline:
            time.sleep(0.1)
        a.save("r3", toks(2, 7000), [6, 7], value0=90)
        assert b.load("q3", toks(2, 7000), [20, 21]) == (2 * BS, set())
        assert b.block(20)[:1] == bytes([90])
    finally:
        a.close(), b.close()


def test_corrupted_value_is_a_load_error_then_recomputed(redis):
    a, b = Engine(redis.url), Engine(redis.url)
    try:
        a.save("r", toks(2), [0, 1])
        keys = redis.cli("--scan", "--pattern", "flexkv:*").split()
        assert len(keys) == 2
        for k in keys:  # replace every value by bytes of the same length but no valid checksum
            redis.cli("SETRANGE", k, "5", "garbage")
        n, failed = b.load("q", toks(2), [10, 11])
        assert n == 2 * BS and failed == {10, 11}
        assert b.m.stats()["remote_reads_corrupt"] == 2
        deadline = time.time() + 5
        while redis.cli("DBSIZE").strip() != "0" and time.time() < deadline:
            time.sleep(0.05)
        assert redis.cli("DBSIZE").strip() == "0"  # bad values are deleted so they get written again
    finally:
        a.close(), b.close()


def _resp_set(port: int, key: str, value: bytes) -> None:
    """SET with a binary value over a raw RESP connection (redis-cli arguments are text)."""
    import socket

    parts = [b"SET", key.encode(), value]
    msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(msg)
        assert s.recv(16).startswith(b"+OK")


def test_a_value_copied_under_another_key_is_corrupt_not_a_hit(redis):
    a = Engine(redis.url)
    try:
        a.save("r", toks(2), [0, 1], value0=10)
        first = sorted(redis.cli("--scan", "--pattern", "flexkv:*").split())
        a.save("s", toks(2, 5000), [2, 3], value0=20)
        second = sorted(set(redis.cli("--scan", "--pattern", "flexkv:*").split()) - set(first))
        assert len(first) == len(second) == 2
        for src, dst in zip(first, second):  # s's keys now hold r's values, checks included
            assert redis.cli("COPY", src, dst, "REPLACE") == "1"
    finally:
        a.close()
    b = Engine(redis.url)
    try:
        n, failed = b.load("q", toks(2, 5000), [10, 11])
        assert n == 2 * BS and failed == {10, 11}
        assert b.m.stats()["remote_reads_corrupt"] == 2 and b.m.stats()["remote_blocks_read"] == 0
    finally:
        b.close()


@pytest.mark.parametrize("secret", ["", "a-deployment-secret"])
def test_chosen_bytes_with_a_recomputed_unkeyed_check_are_served_only_without_a_secret(redis, secret):
    # What anyone who can write to Redis can compute: the unkeyed check of bytes of their choice
    # (the fingerprint and the block key are in the key's name). Without a secret it passes, as
    # docs/security.md says (this also shows the forgery is well made); with one it must not.
    xxhash = pytest.importorskip("xxhash")
    cfg = {"secret": secret} if secret else {}
    a = Engine(redis.url, **cfg)
    try:
        a.save("r", toks(1), [0], value0=10)
    finally:
        a.close()
    (name,) = redis.cli("--scan", "--pattern", "flexkv:*").split()
    _, fp_hex, key_hex = name.rsplit(":", 2)
    chosen = bytes([99]) * BB
    tag = xxhash.xxh3_128_intdigest(int(fp_hex, 16).to_bytes(16, "little") + int(key_hex, 16).to_bytes(16, "little") + chosen)
    _resp_set(redis.port, name, chosen + tag.to_bytes(16, "little"))
    b = Engine(redis.url, **cfg)
    try:
        n, failed = b.load("q", toks(1), [5])
        assert n == BS
        if secret:
            assert failed == {5} and b.m.stats()["remote_reads_corrupt"] == 1
            assert b.block(5) != chosen
        else:
            assert failed == set() and b.block(5) == chosen
    finally:
        b.close()


def test_keys_evicted_by_maxmemory_are_misses():
    with RedisServer(maxmemory="3mb", maxmemory_policy="allkeys-lru") as r:
        a, b = Engine(r.url), Engine(r.url)
        try:
            n = 200  # 800 blocks of 4 KiB: well past what 3 MiB leaves after Redis' own memory
            for k in range(n):
                a.save(f"r{k}", toks(4, 100_000 * (k + 1)), [0, 1, 2, 3])
            assert int(r.cli("DBSIZE")) < 4 * n
            hits = [b.load(f"q{k}", toks(4, 100_000 * (k + 1)), [10, 11, 12, 13]) for k in range(n)]
            assert all(not failed for _, failed in hits)  # evicted keys are misses, never load errors
            served = sum(loaded > 0 for loaded, _ in hits)
            assert 0 < served < n  # the newest survived, the oldest were evicted
        finally:
            a.close(), b.close()


def test_wrong_password_is_a_clear_error():
    with RedisServer(password="right") as r:
        port = int(r.url.rsplit(":", 1)[1])
        with pytest.raises(flexkv.ConfigError, match="refused the credentials"):
            Engine(f"redis://:wrong@127.0.0.1:{port}")
        e = Engine(f"redis://127.0.0.1:{port}", redis_password="right")
        try:
            e.save("r", toks(1), [0])
            assert e.m.stats()["remote_blocks_written"] == 1
        finally:
            e.close()


def test_reset_can_drop_the_engines_keys(redis):
    a = Engine(redis.url, remote_drop_on_reset=True)
    other = Engine(redis.url, model_name="other")
    try:
        a.save("r", toks(3), [0, 1, 2])
        other.save("o", toks(2), [3, 4])
        assert redis.cli("DBSIZE").strip() == "5"
        a.m.reset()  # the keys are deleted on the remote writer thread: reset never waits on Redis
        deadline = time.time() + 10
        while redis.cli("DBSIZE").strip() != "2" and time.time() < deadline:
            time.sleep(0.02)
        assert redis.cli("DBSIZE").strip() == "2"  # only this fingerprint's keys went
    finally:
        a.close(), other.close()


def test_redis_cluster_shares_blocks_between_engines():
    with RedisCluster(3) as c:
        a, b = Engine(c.url), Engine(c.url)
        try:
            a.save("r", toks(8), list(range(8)), value0=3)
            assert a.m.stats()["remote_blocks_written"] == 8
            assert b.load("q", toks(8), list(range(20, 28))) == (8 * BS, set())
            assert all(b.block(20 + i)[:1] == bytes([3 + i]) for i in range(8))
            assert b.m.stats()["remote_direct_read_batches"] == 0  # several nodes: the cluster-aware client reads
            counts = [int(s.cli("DBSIZE").strip()) for s in c.servers] if hasattr(c, "servers") else []
            if counts:
                assert sum(counts) == 8 and sum(1 for x in counts if x) >= 2  # keys spread over the nodes
        finally:
            a.close(), b.close()
