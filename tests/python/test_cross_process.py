"""KV caches in other processes (vLLM CPU workers, TP > 1): blocks move with process_vm_*.

The workers are spawned (never forked: the .NET runtime does not survive fork) and each holds
its shard of the KV cache; one engine per TP rank copies to and from it. Every byte is checked
inside the worker; a worker killed mid-transfer fails only its own tasks."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

import flexkv
import xproc_worker

NB, SPAN, BS = 64, 4096, 16


def spawn_worker(seed: int):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=xproc_worker.serve, args=(child, NB, SPAN, seed), daemon=True)
    p.start()
    info = parent.recv()
    return p, parent, info


def engine_for(info, rank: int):
    m = flexkv.KVManager({"num_cpu_blocks": 64, "block_bytes": 2 * SPAN, "tokens_per_block": BS,
                          "use_hugepage_cpu_buffer": False, "tp_size": 2, "tp_rank": rank})
    m.register_kv_caches([flexkv.KVLayer(info["base"], info["block_stride"], info["span"], info["kv_stride"], 2)],
                         NB, pid=info["pid"])
    return m


def round_trip(m, conn, rid: str, start: int) -> None:
    toks = list(range(start, start + 8 * BS + 1))
    assert m.put(rid, toks, list(range(8)))
    conn.send(("zero", 32, 40))
    assert conn.recv()
    assert m.get(rid + "-g", toks, list(range(32, 40))) == set()
    conn.send(("same", [(i, 32 + i) for i in range(8)]))
    assert conn.recv() is True, "bytes loaded into the worker differ from those saved from it"


def test_two_workers_round_trip_every_byte_and_a_killed_worker_fails_only_its_tasks():
    workers = [spawn_worker(seed) for seed in (1, 2)]
    engines = [engine_for(info, rank) for rank, (_, _, info) in enumerate(workers)]
    try:
        for rank, (m, (_, conn, _)) in enumerate(zip(engines, workers)):
            round_trip(m, conn, f"r{rank}", 1000 * (rank + 1))
        # Kill rank 1 while a large save from it is planned and launched.
        proc1, conn1, _ = workers[1]
        m1 = engines[1]
        toks = list(range(50_000, 50_000 + 16 * BS + 1))
        assert m1.request_finished("doomed", toks, list(range(16)))
        proc1.kill()
        proc1.join(10)
        m1.launch_tasks()
        m1.wait_finished("doomed", "sending", 10)  # ends (failed), never hangs
        assert m1.stats()["blocks_saved"] == 8  # only the first round trip's blocks
        assert m1.get_num_new_matched_tokens("q", toks, 0) == 0  # nothing from the dead worker is served
        # Rank 0 is unaffected.
        round_trip(engines[0], workers[0][1], "after", 90_000)
    finally:
        for m in engines:
            m.close()
        for p, conn, _ in workers:
            if p.is_alive():
                conn.send(("exit",))
                p.join(10)


def test_unreadable_process_is_a_clear_error():
    with flexkv.KVManager(num_cpu_blocks=8, block_bytes=2 * SPAN, use_hugepage_cpu_buffer=False) as m:
        with pytest.raises(flexkv.InvalidArgumentError, match="does not exist|cannot read"):
            m.register_kv_caches([flexkv.KVLayer(0x1000, 2 * SPAN, SPAN, SPAN, 2)], NB, pid=2 ** 22 - 1)
