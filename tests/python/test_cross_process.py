"""KV caches in other processes (vLLM CPU workers, TP > 1): blocks move with process_vm_*.

The workers are spawned (never forked: the .NET runtime does not survive fork) and each holds
its shard of the KV cache; one engine per TP rank copies to and from it. Every byte is checked
inside the worker; a worker killed mid-transfer fails only its own tasks."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
from pathlib import Path

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


def test_one_engine_serves_two_tensor_parallel_workers_and_a_restarted_rank_rejoins():
    workers = [spawn_worker(seed) for seed in (3, 4)]
    m = flexkv.KVManager({"num_cpu_blocks": 64, "block_bytes": 2 * 2 * SPAN, "tokens_per_block": BS,
                          "use_hugepage_cpu_buffer": False, "tp_size": 2})
    try:
        def register(rank, info):
            layer = flexkv.KVLayer(info["base"], info["block_stride"], info["span"], info["kv_stride"], 2)
            return m.register_rank(rank, 2, info["pid"], [layer], NB)

        assert register(0, workers[0][2]) is False  # waits for rank 1
        assert m.get_num_new_matched_tokens("early", list(range(8 * BS + 1)), 0) == 0  # not usable yet
        m.update_state_after_alloc("early", [], 0)
        assert register(1, workers[1][2]) is True
        toks = list(range(8 * BS + 1))
        assert m.put("tp", toks, list(range(8)))
        for _, conn, _ in workers:
            conn.send(("zero", 32, 40))
            assert conn.recv()
        assert m.get("tp-g", toks, list(range(32, 40))) == set()
        for _, conn, _ in workers:  # each rank got back exactly its own shard
            conn.send(("same", [(i, 32 + i) for i in range(8)]))
            assert conn.recv() is True
        # Rank 1 dies: loads fail as a whole (a block needs every rank's part)...
        workers[1][0].kill()
        workers[1][0].join(10)
        assert m.get("tp-g2", toks, list(range(40, 48))) == set(range(40, 48))
        # ...until a restarted rank 1 registers again.
        workers[1] = spawn_worker(5)
        assert register(1, workers[1][2]) is True
        toks2 = list(range(7000, 7000 + 4 * BS + 1))
        assert m.put("tp2", toks2, [0, 1, 2, 3])
        assert m.get("tp2-g", toks2, [20, 21, 22, 23]) == set()
    finally:
        m.close()
        for p, conn, _ in workers:
            if p.is_alive():
                conn.send(("exit",))
                p.join(10)


def world_readable_package(into) -> Path:
    """A copy of the imported flexkv package (with the library it loads) that any user can read.

    The refusal test runs its child as nobody; the clone (and its .venv) may sit in a directory
    only its owner can enter, so the child imports this copy instead, with the base interpreter."""
    from flexkv import _native

    root = Path(into)
    pkg = root / "flexkv"
    shutil.copytree(Path(flexkv.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(_native.library_path(), pkg / _native.LIBRARY_NAME)  # FLEXKV_LIBRARY_PATH's too
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    for f in root.rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    return root


def test_a_process_the_kernel_will_not_let_us_read_is_refused_naming_the_setting():
    """pid 1 belongs to root: an unprivileged engine may not read it (run as nobody when we are root)."""
    import os
    import subprocess
    import sys

    code = ("import flexkv\n"
            "m = flexkv.KVManager(num_cpu_blocks=4, block_bytes=8192, use_hugepage_cpu_buffer=False)\n"
            "try:\n"
            "    m.register_kv_caches([flexkv.KVLayer(0x400000, 8192, 4096, 4096, 2)], 4, pid=1)\n"
            "except flexkv.NotSupportedError as e:\n"
            "    print('REFUSED', e)\n")

    def drop_privileges():
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)

    # Not pytest's tmp_path: it is private to the user running the tests.
    with tempfile.TemporaryDirectory(prefix="flexkv-nobody-") as tmp:
        site = world_readable_package(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("FLEXKV_LIBRARY_PATH", "PYTHONPATH")}
        # The venv's python may be unreachable too: run the interpreter it links to, isolated
        # (-I: no environment, no user site), with only the copy added to its path.
        boot = f"import sys; sys.path.insert(0, {str(site)!r})\n"
        out = subprocess.run([os.path.realpath(sys.executable), "-I", "-c", boot + code], capture_output=True,
                             text=True, timeout=60, cwd=tmp, preexec_fn=drop_privileges, env={**env, "HOME": tmp})
    if "REFUSED" not in out.stdout and "cannot read" in out.stderr:
        pytest.skip("this machine lets the engine read pid 1 (same user and ptrace_scope 0)")
    assert "REFUSED" in out.stdout, out.stdout + out.stderr
    assert "EPERM" in out.stdout and "kernel.yama.ptrace_scope" in out.stdout
