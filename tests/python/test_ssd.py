"""SSD tier end to end: restart across processes, kill -9 during heavy writes, configuration."""

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
