"""SSD tier throughput against raw O_DIRECT on the same directory, and reopen time.

Writes then reads >= 2 GiB of 2 MiB blocks through the engine's SSD tier (puts land in the CPU
tier and are written through to SSD; the engine is then reopened, so the CPU tier is empty and
every block is read back from SSD with O_DIRECT, checksum verified), and in the same run a raw
O_DIRECT sequential write and read loop of the same size and block size in the same directory.
Then fills a cache of 100,000 small blocks and times opening an engine on it.
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import tempfile
import time

import numpy as np

from _common import phase, report

import flexkv

BLOCK = 2 << 20
RAW_IO = 4 << 20  # the raw loop's call size = the largest call the tier makes (DirectFileDevice.MaxRunBytes)


def raw_direct(path: str, nbytes: int) -> tuple[float, float]:
    """Sequential O_DIRECT write then read of nbytes in RAW_IO-sized calls."""
    buf = mmap.mmap(-1, RAW_IO)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4096) * (RAW_IO // 4096))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    try:
        os.posix_fallocate(fd, 0, nbytes)
        t0 = time.perf_counter()
        for off in range(0, nbytes, RAW_IO):
            os.pwrite(fd, buf, off)
        os.fsync(fd)
        w = nbytes / (time.perf_counter() - t0) / 1e9
        t0 = time.perf_counter()
        for off in range(0, nbytes, RAW_IO):
            os.preadv(fd, [buf], off)
        r = nbytes / (time.perf_counter() - t0) / 1e9
    finally:
        os.close(fd)
        os.unlink(path)
    return w, r


EXTRA: dict = {}  # --secret: every block is sealed and verified with HMAC-SHA256


def engine(cfg, kv, layer):
    m = flexkv.KVManager(cfg)
    m.register_kv_caches([layer], kv.shape[0])
    return m


def wait(pred, timeout=300.0):
    t0 = time.perf_counter()
    while not pred():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the SSD tier did not finish in time")
        time.sleep(0.002)
    return time.perf_counter()


def tier_write_read(ssd_dir: str, blocks: int) -> tuple[float, float, int]:
    per_req = 64
    kv = np.zeros((2 * blocks, BLOCK), dtype=np.uint8)
    kv[:blocks] = np.random.default_rng(0).integers(0, 255, size=(blocks, BLOCK), dtype=np.uint8)
    kv[blocks:] = 1  # fault in the destination pages before anything is timed
    layer = flexkv.KVLayer(kv.ctypes.data, BLOCK, BLOCK)
    cfg = {"num_cpu_blocks": blocks, "block_bytes": BLOCK, "ssd_cache_gb": (blocks + 8) * BLOCK / 2**30,
           "ssd_cache_dir": ssd_dir, "tokens_per_block": 16, **EXTRA}
    reqs = [(f"r{r}", list(range(r * 10**6, r * 10**6 + per_req * 16 + 1)), list(range(r * per_req, (r + 1) * per_req)))
            for r in range(blocks // per_req)]
    m = engine(cfg, kv, layer)
    for rid, toks, ids in reqs:
        assert m.request_finished(rid, toks, ids)
    t0 = time.perf_counter()
    m.launch_tasks()
    t1 = wait(lambda: not m.stats()["ssd_writes_pending"] and m.stats()["ssd_blocks_written"] >= blocks)
    write_gbps = blocks * BLOCK / (t1 - t0) / 1e9
    m.close()

    # Reopened with a CPU tier smaller than the data: every block comes from SSD, in waves that
    # fit the CPU tier (loads are staged through it), as when the SSD holds more than the CPU.
    wave = 4
    m = engine(dict(cfg, num_cpu_blocks=wave * per_req * 2), kv, layer)
    assert m.stats()["ssd_restored_blocks"] == blocks
    t0 = time.perf_counter()
    for w in range(0, len(reqs), wave):
        pending = set()
        for rid, toks, ids in reqs[w:w + wave]:
            dst = [blocks + i for i in ids]
            assert m.get_num_new_matched_tokens("g" + rid, toks, 0) == per_req * 16
            m.update_state_after_alloc("g" + rid, dst, per_req * 16)
            pending.add("g" + rid)
        m.launch_tasks()
        while pending:
            got = m.query_finished()
            assert not got.failed_blocks, got.failed_blocks
            pending -= got.recving
            if pending:
                m.wait(0.01)
        for rid, _, _ in reqs[w:w + wave]:
            m.request_finished("g" + rid, None, (), save=False)
    read_gbps = blocks * BLOCK / (time.perf_counter() - t0) / 1e9
    assert m.stats()["ssd_blocks_read"] == blocks
    m.close()
    if not np.array_equal(kv[blocks:], kv[:blocks]):
        raise SystemExit("blocks read back from SSD differ from those written")
    return write_gbps, read_gbps, blocks * BLOCK


def reopen_ms(ssd_dir: str, n: int) -> float:
    bb, per_req = 4096, 1000
    kv = np.ones((per_req, bb), dtype=np.uint8)
    layer = flexkv.KVLayer(kv.ctypes.data, bb, bb)
    cfg = {"num_cpu_blocks": 4 * per_req, "block_bytes": bb, "ssd_cache_gb": (n + 16) * bb / 2**30,
           "ssd_cache_dir": ssd_dir, "tokens_per_block": 16, "use_hugepage_cpu_buffer": False, **EXTRA}
    m = engine(cfg, kv, layer)
    for r in range(n // per_req):
        assert m.request_finished(f"r{r}", list(range(r * 10**6, r * 10**6 + per_req * 16 + 1)), list(range(per_req)))
        m.launch_tasks()
        m.wait_finished(f"r{r}", "sending", 60)
        wait(lambda: not m.stats()["ssd_writes_pending"])  # filling, not measuring: keep CPU slots free
    assert m.stats()["ssd_blocks_used"] == n
    m.close()
    t0 = time.perf_counter()
    m = flexkv.KVManager(cfg)
    dt = (time.perf_counter() - t0) * 1e3
    assert m.stats()["ssd_restored_blocks"] == n
    m.close()
    return dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=2.0)
    p.add_argument("--dir", default=None, help="directory on the SSD to test (default: a temporary one)")
    p.add_argument("--reopen-blocks", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--secret", default="", help="set the secret key (keyed seals: HMAC-SHA256)")
    a = p.parse_args()
    if a.secret:
        EXTRA["secret"] = a.secret
    root = tempfile.mkdtemp(prefix="flexkv-bench-ssd-", dir=a.dir)
    try:
        blocks = int(a.gib * (1 << 30)) // BLOCK
        # The virtual disk's speed drifts: interleave raw and tier runs and keep the best of each.
        raw_w = raw_r = w = r = 0.0
        for k in range(a.rounds):
            phase(f"round {k + 1}/{a.rounds}: raw O_DIRECT write and read of {blocks * BLOCK >> 20} MiB")
            rw, rr = raw_direct(os.path.join(root, "raw.dat"), blocks * BLOCK)
            phase(f"round {k + 1}/{a.rounds}: the same through the SSD tier (write-through, reopen, read back)")
            tw, tr, verified = tier_write_read(os.path.join(root, f"tier{k}"), blocks)
            shutil.rmtree(os.path.join(root, f"tier{k}"), ignore_errors=True)
            raw_w, raw_r, w, r = max(raw_w, rw), max(raw_r, rr), max(w, tw), max(r, tr)
        phase(f"filling a cache of {a.reopen_blocks:,} blocks and timing an engine opening it")
        reopen = reopen_ms(os.path.join(root, "reopen"), a.reopen_blocks)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report({
        "bytes_each_way": blocks * BLOCK,
        "block_bytes": BLOCK,
        "raw_io_bytes": RAW_IO,
        "write_gbps": round(w, 3),
        "read_gbps": round(r, 3),
        "raw_write_gbps": round(raw_w, 3),
        "raw_read_gbps": round(raw_r, 3),
        "write_ratio": round(w / raw_w, 3),
        "read_ratio": round(r / raw_r, 3),
        "reopen_ms_100k": round(reopen, 2),
        "reopen_blocks": a.reopen_blocks,
        "rounds": a.rounds,
        "bytes_verified": verified,
    })


if __name__ == "__main__":
    main()
