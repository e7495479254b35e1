"""TP=2 with workers in their own processes (vLLM's multiprocess executor on the CPU backend).

As in vLLM, the workers register their KV caches before the scheduler exists; they connect to
FlexKv's Unix socket as soon as the scheduler listens, and one engine moves every rank's shard
of a block. Duplicate ranks and mismatched shards are refused, a missing rank is a clear error
after the timeout, and a worker that exits is deregistered until it comes back."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from types import SimpleNamespace

import pytest

from vllm.distributed import parallel_state

import flexkv
from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

from . import tp_worker
from .waiting import wait_for

NB = 32


class Workers:
    """Spawned worker processes (never forked: the .NET runtime does not survive fork)."""

    def __init__(self, path: str) -> None:
        self.path, self.procs = path, []

    def start(self, rank: int, heads: int = 1, num_blocks: int = NB, tp: int = 2):
        parent, child = mp.get_context("spawn").Pipe()
        p = mp.get_context("spawn").Process(target=tp_worker.run, args=(child, rank, self.path, num_blocks, heads, tp),
                                            daemon=True)
        p.start()
        assert parent.poll(120) and parent.recv() == "returned"  # register_kv_caches never waits for the scheduler
        self.procs.append((p, parent))
        return p, parent

    @staticmethod
    def status(worker, timeout: float = 60) -> str:
        worker[1].send(("status", timeout))
        return worker[1].recv()

    @staticmethod
    def same(worker, pairs) -> bool:
        worker[1].send(("same", pairs))
        return worker[1].recv()

    def close(self) -> None:
        for p, conn in self.procs:
            if p.is_alive():
                conn.send(("exit",))
                p.join(10)


@pytest.fixture
def workers(tmp_path):
    w = Workers(str(tmp_path / "reg.sock"))
    yield w
    w.close()


def scheduler(make_vllm_config, path: str, **extra):
    parallel_state.set_rank(0, 2)
    return FlexKVConnectorV1Impl(make_vllm_config(tp=2, extra_config={"registration_socket": path, **extra}), 0)


def test_workers_register_before_the_scheduler_exists_and_a_restarted_rank_rejoins(make_vllm_config, workers):
    w0, w1 = workers.start(0), workers.start(1)
    sched = scheduler(make_vllm_config, workers.path)  # waits until both ranks are in
    try:
        assert oct(os.stat(workers.path).st_mode & 0o777) == "0o600"
        assert sched.is_ready()
        assert workers.status(w0) == workers.status(w1) == "registered"
        m = sched.scheduler.manager
        toks = list(range(4 * 16 + 1))
        assert m.put("tp", toks, [0, 1, 2, 3])
        assert m.get("tp-g", toks, [20, 21, 22, 23]) == set()
        assert workers.same(w0, [(i, 20 + i) for i in range(4)]) and workers.same(w1, [(i, 20 + i) for i in range(4)])

        # Rank 1 exits: it is deregistered, so nothing is offered (a load needs every rank's part)...
        w1[0].kill()
        w1[0].join(10)
        assert wait_for(lambda: not sched.is_ready())
        assert sched.scheduler.registration.missing() == [1]
        assert m.get_num_new_matched_tokens("q", toks, 0) == 0
        # ...until a restarted worker registers rank 1 again; the cached blocks are still there.
        w1 = workers.start(1)
        assert workers.status(w1) == "registered"
        assert wait_for(sched.is_ready)
        assert m.get("tp-g2", toks, [24, 25, 26, 27]) == set()
        assert workers.same(w0, [(i, 24 + i) for i in range(4)])
        # The new worker's shard is all zeros, except the blocks just loaded into it.
        assert workers.same(w1, [(24 + i, 20 + i) for i in range(4)]) is False
    finally:
        sched.shutdown()
    assert not os.path.exists(workers.path)


def test_duplicate_ranks_and_mismatched_shards_are_refused_clearly(make_vllm_config, workers):
    sched = scheduler(make_vllm_config, workers.path, registration_timeout_s=0.5)
    try:
        w0 = workers.start(0)
        assert workers.status(w0) == "registered"
        wrong = workers.start(1, num_blocks=NB // 2)
        status = workers.status(wrong)
        assert status.startswith("refused") and "rank 1 has 16 blocks, rank 0 32" in status
        # A second worker claiming rank 0 while its holder runs is refused and keeps retrying...
        twin = workers.start(0)
        assert "got no answer" in workers.status(twin, 3)
        assert sched.scheduler.registration.holder(0) == w0[0].pid
        # ...so it takes the rank over as soon as the holder is gone (a restarted worker).
        w0[0].kill()
        w0[0].join(10)
        assert workers.status(twin) == "registered"
        assert sched.scheduler.registration.holder(0) == twin[0].pid
        assert not sched.is_ready()
        w1 = workers.start(1)
        assert workers.status(w1) == "registered"
        assert sched.is_ready()
    finally:
        sched.shutdown()


def test_a_missing_rank_is_a_clear_error_after_the_timeout(make_vllm_config, workers, caplog):
    w0 = workers.start(0)
    with caplog.at_level(logging.ERROR, logger="flexkv"):
        start = time.monotonic()
        sched = scheduler(make_vllm_config, workers.path, registration_timeout_s=1)
        waited = time.monotonic() - start
    try:
        assert 1 <= waited < 30
        assert "rank(s) [1] of 2 did not register" in caplog.text
        assert not sched.is_ready()
        with pytest.raises(flexkv.InvalidStateError, match=r"rank\(s\) \[1\]"):
            sched.scheduler.registration.wait_ready(0.1)
        toks = list(range(2 * 16 + 1))
        assert sched.get_num_new_matched_tokens(SimpleNamespace(request_id="r", all_token_ids=toks), 0) == (0, False)
        assert workers.status(w0) == "registered"
    finally:
        sched.shutdown()


def test_a_bad_registration_timeout_is_a_config_error(make_vllm_config, tmp_path):
    with pytest.raises(flexkv.ConfigError, match="registration_timeout_s"):
        scheduler(make_vllm_config, str(tmp_path / "s.sock"), registration_timeout_s="soon")


def test_worker_huge_pages_takes_a_boolean(make_vllm_config):
    cfg = make_vllm_config(tp=2, extra_config={"worker_huge_pages": "maybe"})
    with pytest.raises(flexkv.ConfigError, match="worker_huge_pages"):
        FlexKVConnectorV1Impl(cfg, 1)
    assert FlexKVConnectorV1Impl(make_vllm_config(tp=2, extra_config={"worker_huge_pages": "off"}), 1).worker.huge_pages is False


def test_a_single_worker_in_another_process_registers_over_the_socket(make_vllm_config, workers):
    # --distributed-executor-backend mp (or Ray) with one worker: world size 1, but the worker
    # is not in the scheduler's process, so the in-process registry would never see it.
    w0 = workers.start(0, tp=1)
    parallel_state.set_rank(0, 1)
    sched = FlexKVConnectorV1Impl(make_vllm_config(tp=1, executor_backend="mp",
                                                   extra_config={"registration_socket": workers.path}), 0)
    try:
        assert sched.is_ready() and workers.status(w0) == "registered"
        m = sched.scheduler.manager
        toks = list(range(4 * 16 + 1))
        assert m.put("one", toks, [0, 1, 2, 3])
        assert m.get("one-g", toks, [20, 21, 22, 23]) == set()
        assert workers.same(w0, [(i, 20 + i) for i in range(4)])
    finally:
        sched.shutdown()
