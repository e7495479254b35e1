"""TP=2 with workers in their own processes (vLLM's multiprocess executor on the CPU backend):
they register over FlexKv's Unix socket, and one engine moves every rank's shard of a block."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from vllm.distributed import parallel_state
from vllm.v1.core.kv_cache_manager import KVCacheBlocks  # noqa: F401  (stub import check)

from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

from . import tp_worker


def test_two_worker_processes_register_and_round_trip(make_vllm_config, tmp_path):
    path = str(tmp_path / "reg.sock")
    cfg = make_vllm_config(tp=2, extra_config={"registration_socket": path})
    parallel_state.set_rank(0, 2)
    sched = FlexKVConnectorV1Impl(cfg, 0)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    ctx = mp.get_context("spawn")
    procs = []
    try:
        for rank in range(2):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=tp_worker.run, args=(child, rank, path, 32), daemon=True)
            p.start()
            procs.append((p, parent))
        for _, conn in procs:
            assert conn.poll(120) and conn.recv() == "registered"
        assert sched.is_ready()
        m = sched.scheduler.manager
        toks = list(range(4 * 16 + 1))
        assert m.put("tp", toks, [0, 1, 2, 3])
        assert m.get("tp-g", toks, [20, 21, 22, 23]) == set()
        for _, conn in procs:
            conn.send(("same", [(i, 20 + i) for i in range(4)]))
            assert conn.recv() is True
    finally:
        for p, conn in procs:
            if p.is_alive():
                conn.send(("exit",))
                p.join(10)
        sched.shutdown()
    assert not os.path.exists(path)
