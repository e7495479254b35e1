"""The engine metrics model on a real redis-server: remote hits by tier and both remote
directions move as the workload predicts; a killed server fails the reads in flight as
unavailable, ends lookups as remote_down and refuses writes as unavailable."""

from __future__ import annotations

import shutil
import time

import pytest

from flexkv.metrics import snapshot

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

from redis_support import RedisServer  # noqa: E402
from test_redis_tier import BB, BS, Engine, toks  # noqa: E402


def wait_until(what, cond, timeout=15.0):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, what
        time.sleep(0.05)


def test_remote_metrics_follow_a_workload_and_a_dead_server():
    with RedisServer() as redis:
        a, b = Engine(redis.url), Engine(redis.url)
        try:
            a.save("r", toks(3), [0, 1, 2])
            wait_until("remote writes counted", lambda: snapshot(a.m)["transfer_blocks{direction=h2remote}"] == 3)
            va = snapshot(a.m)
            assert va["transfer_bytes{direction=h2remote}"] == 3 * BB
            assert 1 <= va["transfer_ops{direction=h2remote}"] == va["transfer_seconds_count{direction=h2remote}"]
            assert va["transfer_blocks{direction=d2h}"] == 3

            assert b.m.match("q", toks(3), 0) == 3 * BS  # found in the store
            vb = snapshot(b.m)
            assert vb["matched_tokens_by_tier{tier=remote}"] == 3 * BS
            assert vb["matched_tokens_by_tier{tier=cpu}"] == 0 and vb["lookups{outcome=full}"] == 1

            redis.kill()  # the load's reads meet a dead server
            b.m.update_state_after_alloc("q", [10, 11, 12], 3 * BS)
            b.m.launch_tasks()
            assert b.m.wait_finished("q", "recving", 15) == {10, 11, 12}
            b.m.request_finished("q", None, (), save=False)
            vb = snapshot(b.m)
            assert vb["transfer_failures{direction=remote2h,reason=unavailable}"] == 3
            assert vb["transfer_failures{direction=h2d,reason=unavailable}"] == 3
            assert vb["transfer_blocks{direction=remote2h}"] == 0

            wait_until("the client sees the server gone", lambda: not b.m.stats()["remote_connected"])
            assert b.m.match("z", toks(2, 5000), 0) == 0
            assert snapshot(b.m)["blocks_not_offered{reason=remote_down}"] == 2
            assert b.m.put("w", toks(2, 8000), [4, 5])  # saved in CPU; the write-through is refused
            assert snapshot(b.m)["transfer_failures{direction=h2remote,reason=unavailable}"] == 2
        finally:
            a.close(), b.close()
