"""SSD tier end to end: restart across processes, kill -9 during heavy writes and at random
moments, warnings logged, configuration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import flexkv

BS, SPAN, NB = 16, 4096, 64

CHILD = textwrap.dedent("""
    import sys, time, torch, flexkv
    BS, SPAN, NB = 16, 4096, 64
    ssd_dir, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kv = torch.zeros(NB, 2, SPAN // 2, dtype=torch.int16)
    cfg = {"num_cpu_blocks": 32, "block_bytes": 2 * SPAN, "tokens_per_block": BS, "ssd_cache_gb": 64 * 8192 / 2**30,
           "ssd_cache_dir": ssd_dir, "use_hugepage_cpu_buffer": False}
    m = flexkv.KVManager(cfg)
    m.register_kv_caches([flexkv.KVLayer(kv.data_ptr(), kv.stride(0) * 2, SPAN, kv.stride(1) * 2, 2)], NB)
    for r in range(start, start + count):
        for i in range(4):
            kv[i].fill_(r * 8 + i + 1)  # block i of request r (never all zeros)
        m.put(f"r{r}", [r * 100000 + j for j in range(4 * BS + 1)], [0, 1, 2, 3])
        print(r, flush=True)
    deadline = time.time() + 10
    while m.stats()["ssd_blocks_written"] < 4 * count and time.time() < deadline:
        time.sleep(0.01)
    print("done", m.stats()["ssd_blocks_written"], flush=True)
    m.close()
""")


def child(ssd_dir, start, count, **kw):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(ssd_dir), str(start), str(count)],
                            stdout=subprocess.PIPE, text=True, **kw)


def reader(ssd_dir):
    import torch

    kv = torch.zeros(NB, 2, SPAN // 2, dtype=torch.int16)
    m = flexkv.KVManager({"num_cpu_blocks": 32, "block_bytes": 2 * SPAN, "tokens_per_block": BS,
                          "ssd_cache_gb": 64 * 8192 / 2**30, "ssd_cache_dir": str(ssd_dir),
                          "use_hugepage_cpu_buffer": False})
    m.register_kv_caches([flexkv.KVLayer(kv.data_ptr(), kv.stride(0) * 2, SPAN, kv.stride(1) * 2, 2)], NB)
    return m, kv


def check_request(m, kv, r):
    """Loads request r's blocks; every block served must hold exactly what was saved."""
    toks = [r * 100000 + j for j in range(4 * BS + 1)]
    n = m.get_num_new_matched_tokens(f"q{r}", toks, 0)
    dst = [10, 11, 12, 13]
    kv[10:14].fill_(-1)
    m.update_state_after_alloc(f"q{r}", dst, n)
    failed = set()
    if n:
        m.launch_tasks()
        failed = m.wait_finished(f"q{r}", "recving", 10)
    m.request_finished(f"q{r}", None, (), save=False)
    for i in range(n // BS):
        if dst[i] in failed:
            continue
        assert bool((kv[dst[i]] == r * 8 + i + 1).all()), f"request {r} block {i} served torn or wrong bytes"
    return n // BS, len(failed)


def test_blocks_survive_a_restart_in_another_process(tmp_path):
    p = child(tmp_path, 0, 6)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0 and "done 24" in out
    m, kv = reader(tmp_path)
    assert m.stats()["ssd_restored_blocks"] == 24
    for r in range(6):
        assert check_request(m, kv, r) == (4, 0)
    m.close()


def test_kill_9_during_heavy_writes_serves_no_torn_block(tmp_path):
    p = child(tmp_path, 0, 400)
    seen = 0
    for line in p.stdout:
        seen += 1
        if seen >= 60:
            break
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    m, kv = reader(tmp_path)  # the lock died with the process; the journal is replayed
    restored = m.stats()["ssd_restored_blocks"]
    assert restored > 0
    served = 0
    for r in range(seen):
        blocks, _ = check_request(m, kv, r)
        served += blocks
    assert served > 0
    m.close()


def test_ssd_from_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEXKV_CONFIG_PATH", raising=False)
    monkeypatch.setenv("FLEXKV_SSD_CACHE_GB", "0.01")
    monkeypatch.setenv("FLEXKV_SSD_CACHE_DIR", f"{tmp_path}/a;{tmp_path}/b")
    with flexkv.KVManager(num_cpu_blocks=8, block_bytes=4096, use_hugepage_cpu_buffer=False) as m:
        st = m.stats()
        assert st["ssd_blocks_total"] == int(0.01 * 2**30) // 4096
        assert (tmp_path / "a" / "flexkv-blocks.dat").exists() and (tmp_path / "b" / "flexkv-blocks.dat").exists()


def test_directory_owned_by_someone_else_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    d = tmp_path / "theirs"
    d.mkdir()
    os.chown(d, 12345, 12345)
    with pytest.raises(flexkv.ConfigError, match="owned by uid 12345"):
        flexkv.KVManager(num_cpu_blocks=8, block_bytes=4096, ssd_cache_gb=0.01, ssd_cache_dir=str(d))


def test_buffered_io_mode_works_end_to_end(tmp_path):
    # The fallback a filesystem refusing O_DIRECT gets (EINVAL at open) is this same path; this
    # kernel's filesystems (tmpfs included, since Linux 6.6) all accept O_DIRECT, so it is chosen here.
    m = flexkv.KVManager({"num_cpu_blocks": 32, "block_bytes": 2 * SPAN, "tokens_per_block": BS,
                          "ssd_cache_gb": 64 * 8192 / 2**30, "ssd_cache_dir": str(tmp_path),
                          "ssd_direct_io": False, "use_hugepage_cpu_buffer": False})
    import torch

    kv = torch.zeros(NB, 2, SPAN // 2, dtype=torch.int16)
    m.register_kv_caches([flexkv.KVLayer(kv.data_ptr(), kv.stride(0) * 2, SPAN, kv.stride(1) * 2, 2)], NB)
    try:
        assert m.stats()["ssd_direct"] is False
        for i in range(4):
            kv[i].fill_(i + 1)
        assert m.put("r0", [j for j in range(4 * BS + 1)], [0, 1, 2, 3])
        deadline = time.time() + 10
        while m.stats()["ssd_writes_pending"] and time.time() < deadline:
            time.sleep(0.01)
        assert m.stats()["ssd_blocks_written"] == 4
    finally:
        m.close()
    m, kv = reader(tmp_path)  # reopened with O_DIRECT on the same files
    assert check_request(m, kv, 0) == (4, 0)
    m.close()


def test_truncated_cache_file_never_serves_bytes(tmp_path):
    p = child(tmp_path, 0, 3)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0
    os.truncate(tmp_path / "flexkv-blocks.dat", 0)  # the data is gone, the journal still lists it
    m, kv = reader(tmp_path)
    for r in range(3):
        served, failed = check_request(m, kv, r)
        assert failed == served  # every block the journal promised fails its checksum
    assert m.stats()["ssd_checksum_failures"] > 0
    m.close()


def test_a_cache_not_reused_is_logged_with_the_reason(tmp_path, caplog):
    import logging

    cfg = {"num_cpu_blocks": 8, "block_bytes": 4096, "tokens_per_block": BS, "ssd_cache_gb": 0.001,
           "ssd_cache_dir": str(tmp_path), "use_hugepage_cpu_buffer": False, "model_name": "a"}
    flexkv.KVManager(cfg).close()
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        with flexkv.KVManager({**cfg, "model_name": "b"}) as m:
            assert any("was not reused (cache fingerprint differs" in w for w in m.stats()["warnings"])
    assert any("was not reused (cache fingerprint differs" in r.getMessage() for r in caplog.records)


# A writer that never stops: request r's 4 blocks (pseudo-random bytes seeded by r and the block)
# are saved through a 96-slot SSD tier, so slots are reused, blocks evicted and the journal
# compacted all the time. numpy, not torch: each start must be quick.
KILL_CHILD = textwrap.dedent("""
    import sys, numpy as np, flexkv
    BS, BB, SLOTS = 16, 4096, 96
    ssd_dir, r = sys.argv[1], int(sys.argv[2])
    kv = np.zeros((64, BB), dtype=np.uint8)
    m = flexkv.KVManager({"num_cpu_blocks": 32, "block_bytes": BB, "tokens_per_block": BS, "ssd_cache_gb": SLOTS * BB / 2**30,
                          "ssd_cache_dir": ssd_dir, "use_hugepage_cpu_buffer": False})
    m.register_kv_caches([flexkv.KVLayer(kv.ctypes.data, BB, BB)], 64)
    print("ready", flush=True)
    while True:
        ids = [4 * (r % 8) + i for i in range(4)]
        for i, b in enumerate(ids):
            kv[b] = np.random.default_rng(r * 4 + i).integers(0, 256, BB, dtype=np.uint8)
        m.put(f"r{r}", [r * 100000 + j for j in range(4 * BS + 1)], ids)
        print(r, flush=True)
        r += 1
""")


def test_kill_9_at_random_moments_never_serves_a_wrong_byte(tmp_path):
    import random

    import numpy as np

    rng = random.Random(20240607)
    bb, slots = 4096, 96
    totals = {"kills": 0, "restored": 0, "served": 0, "failed": 0, "wrong_bytes": 0}
    next_r, started = 0, time.monotonic()
    for it in range(10):
        p = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(tmp_path), str(next_r)], stdout=subprocess.PIPE, text=True)
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.0, 0.4))  # while it starts: journal replay and rewrite, file allocation
        else:
            assert p.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 1.0))  # while it writes: blocks, journal appends, compactions
        p.send_signal(signal.SIGKILL)
        out = p.stdout.read()
        p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL
        done = [int(x) for x in out.split() if x.isdigit()]
        last = max(done, default=next_r - 1) + 1  # request `last` may have been in flight
        kv = np.zeros((64, bb), dtype=np.uint8)
        m = flexkv.KVManager({"num_cpu_blocks": 32, "block_bytes": bb, "tokens_per_block": BS,
                              "ssd_cache_gb": slots * bb / 2**30, "ssd_cache_dir": str(tmp_path),
                              "use_hugepage_cpu_buffer": False})
        m.register_kv_caches([flexkv.KVLayer(kv.ctypes.data, bb, bb)], 64)
        restored = m.stats()["ssd_restored_blocks"]
        served = failed = wrong = 0
        for r in range(last + 1):
            toks = [r * 100000 + j for j in range(4 * BS + 1)]
            n = m.get_num_new_matched_tokens(f"q{r}", toks, 0)
            dst = [40 + i for i in range(n // BS)]
            kv[40:44] = 0
            m.update_state_after_alloc(f"q{r}", dst, n)
            bad = set()
            if n:
                m.launch_tasks()
                bad = m.wait_finished(f"q{r}", "recving", 10)
            m.request_finished(f"q{r}", None, (), save=False)
            for i, b in enumerate(dst):
                if b in bad:
                    failed += 1
                    continue
                served += 1
                wrong += int((kv[b] != np.random.default_rng(r * 4 + i).integers(0, 256, bb, dtype=np.uint8)).sum())
        m.close()
        print(f"kill {it}: {len(done)} requests saved, {restored} blocks restored, {served} served, "
              f"{failed} refused, {wrong} wrong bytes")
        assert wrong == 0, f"kill {it}: {wrong} wrong bytes served"
        totals = {k: v + d for (k, v), d in zip(totals.items(), (1, restored, served, failed, wrong))}
        next_r = last + 1
    print("totals:", totals, f"in {time.monotonic() - started:.1f} s")
    assert totals["kills"] == 10 and totals["wrong_bytes"] == 0
    assert totals["served"] > 0  # the kills left blocks to check
