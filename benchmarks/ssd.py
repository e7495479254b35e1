"""SSD tier throughput against the disk's own limit on the same directory (fio, and a raw
O_DIRECT loop), and reopen time.

Writes then reads >= 2 GiB of 2 MiB blocks through the engine's SSD tier (puts land in the CPU
tier and are written through to SSD; the engine is then reopened, so the CPU tier is empty and
every block is read back from SSD with O_DIRECT, checksum verified). The tier's files are
filled once first (first_fill_write_gbps: fresh extents, a cold CPU pool), the cache is reset,
and the timed write fills them again, as a serving engine's do once warm. The limit is measured
in the same run, in the same directory, on a file in the same state (fallocated, written once):
fio, sequential O_DIRECT write and read at the tier's block size, at queue depth 1 and at the
depths the tier uses, and a Python loop of pwrite/preadv calls of the tier's largest call size
at depth 1 (a second reference); fio runs at that call size too. The best of them is the limit the ratios divide by. Rounds
interleave the limit and the tier (the virtual disk's speed drifts); the best of each is kept.
Then fills a cache of 100,000 small blocks and times opening an engine on it.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

from _common import phase, report

import flexkv

BLOCK = 2 << 20
RAW_IO = 4 << 20  # the raw loop's call size = the largest call the tier makes (DirectFileDevice.MaxRunBytes)
FIO = shutil.which("fio")


def raw_direct(path: str, nbytes: int) -> tuple[float, float, float]:
    """Sequential O_DIRECT writes of nbytes in RAW_IO-sized calls into a fallocated file (the
    first fill, then again over the written extents), then a read; GB/s of each."""
    buf = mmap.mmap(-1, RAW_IO)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4096) * (RAW_IO // 4096))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    try:
        os.posix_fallocate(fd, 0, nbytes)
        w = []
        for _ in range(2):
            t0 = time.perf_counter()
            for off in range(0, nbytes, RAW_IO):
                os.pwrite(fd, buf, off)
            os.fsync(fd)
            w.append(nbytes / (time.perf_counter() - t0) / 1e9)
        t0 = time.perf_counter()
        for off in range(0, nbytes, RAW_IO):
            os.preadv(fd, [buf], off)
        r = nbytes / (time.perf_counter() - t0) / 1e9
    finally:
        os.close(fd)
        os.unlink(path)
    return w[0], w[1], r


def fio_gbps(path: str, nbytes: int, rw: str, depth: int, bs: int = BLOCK) -> float:
    """One fio job: sequential O_DIRECT `rw` of nbytes in bs-sized I/Os at queue depth `depth` (libaio)."""
    cmd = [FIO, "--name=flexkv-limit", f"--filename={path}", f"--size={nbytes}", f"--bs={bs}", "--direct=1",
           f"--rw={rw}", "--ioengine=libaio", f"--iodepth={depth}", "--end_fsync=1", "--output-format=json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    return job[rw.removeprefix("rand")]["bw_bytes"] / 1e9


def fio_round(path: str, nbytes: int, depths: list[int]) -> dict:
    """fio on a new file: the first fill (fallocated by fio, depth 1), then writes over it and
    reads at each depth, in I/Os of the tier's block size and of its largest call (RAW_IO)."""
    out = {"first_write": fio_gbps(path, nbytes, "write", 1)}
    for rw in ("write", "read"):
        for d in depths:
            for bs in (BLOCK, RAW_IO):
                out[f"{rw}_qd{d}_{bs >> 20}m"] = fio_gbps(path, nbytes, rw, d, bs)
    os.unlink(path)
    return out


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


def tier_write_read(ssd_dir: str, blocks: int) -> tuple[float, float, float, int, dict]:
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
    fills = []
    for rnd in range(2):  # the first fill, then (after a reset) the timed one
        if rnd:
            m.reset()
            wait(lambda: m.stats()["ssd_blocks_used"] == 0)
        before = m.stats()["ssd_blocks_written"]
        for rid, toks, ids in reqs:
            assert m.request_finished(f"{rid}-{rnd}", toks, ids)
        t0 = time.perf_counter()
        m.launch_tasks()
        t1 = wait(lambda: (lambda st: not st["ssd_writes_pending"] and st["ssd_blocks_written"] >= before + blocks)(m.stats()))
        fills.append(blocks * BLOCK / (t1 - t0) / 1e9)
        m.query_finished()  # hands out the finished saves
    first_gbps, write_gbps = fills
    st = m.stats()
    depths = {"write": st.get("ssd_write_depth", 1), "read": st.get("ssd_read_depth", 1)}
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
    return first_gbps, write_gbps, read_gbps, blocks * BLOCK, depths


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
    if FIO is None:
        phase("fio not found (Debian package fio; ./build.sh bench ssd installs it): the limit is the Python raw loop alone")
    try:
        blocks = int(a.gib * (1 << 30)) // BLOCK
        nbytes = blocks * BLOCK
        # A small probe engine says which depths the tier uses, so fio is run at those.
        _, _, _, _, depths = tier_write_read(os.path.join(root, "probe"), 64)
        shutil.rmtree(os.path.join(root, "probe"), ignore_errors=True)
        fio_depths = sorted({1, depths["write"], depths["read"]})
        fio: dict[str, float] = {}
        raw = {"first_write": 0.0, "write": 0.0, "read": 0.0}
        tier = {"first_write": 0.0, "write": 0.0, "read": 0.0}
        for k in range(a.rounds):
            if FIO:
                phase(f"round {k + 1}/{a.rounds}: fio O_DIRECT write and read of {nbytes >> 20} MiB at depths {fio_depths}")
                for key, v in fio_round(os.path.join(root, "fio.dat"), nbytes, fio_depths).items():
                    fio[key] = max(fio.get(key, 0.0), v)
            phase(f"round {k + 1}/{a.rounds}: raw O_DIRECT write and read of {nbytes >> 20} MiB")
            rf, rw, rr = raw_direct(os.path.join(root, "raw.dat"), nbytes)
            phase(f"round {k + 1}/{a.rounds}: the same through the SSD tier (fill, reset, fill, reopen, read back)")
            tf, tw, tr, verified, _ = tier_write_read(os.path.join(root, f"tier{k}"), blocks)
            shutil.rmtree(os.path.join(root, f"tier{k}"), ignore_errors=True)
            for d, vals in ((raw, (rf, rw, rr)), (tier, (tf, tw, tr))):
                for key, v in zip(("first_write", "write", "read"), vals):
                    d[key] = max(d[key], v)
        phase(f"filling a cache of {a.reopen_blocks:,} blocks and timing an engine opening it")
        reopen = reopen_ms(os.path.join(root, "reopen"), a.reopen_blocks)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    fio_w = max((v for key, v in fio.items() if key.startswith("write_qd")), default=None)
    fio_r = max((v for key, v in fio.items() if key.startswith("read_qd")), default=None)
    limit_w = max(raw["write"], fio_w or 0.0)
    limit_r = max(raw["read"], fio_r or 0.0)
    r3 = lambda v: None if v is None else round(v, 3)  # noqa: E731
    report({
        "bytes_each_way": nbytes,
        "block_bytes": BLOCK,
        "raw_io_bytes": RAW_IO,
        "ssd_write_depth": depths["write"],
        "ssd_read_depth": depths["read"],
        "write_gbps": r3(tier["write"]),
        "read_gbps": r3(tier["read"]),
        "first_fill_write_gbps": r3(tier["first_write"]),
        "fio_write_gbps": r3(fio_w),
        "fio_read_gbps": r3(fio_r),
        **{f"fio_{key}_gbps": r3(v) for key, v in sorted(fio.items())},
        "raw_write_gbps": r3(raw["write"]),
        "raw_read_gbps": r3(raw["read"]),
        "raw_first_write_gbps": r3(raw["first_write"]),
        "limit_write_gbps": r3(limit_w),
        "limit_read_gbps": r3(limit_r),
        "limit_source": "fio and the raw loop" if FIO else "the raw loop (fio not installed)",
        "write_ratio": round(tier["write"] / limit_w, 3),
        "read_ratio": round(tier["read"] / limit_r, 3),
        "raw_write_ratio": round(tier["write"] / raw["write"], 3),
        "raw_read_ratio": round(tier["read"] / raw["read"], 3),
        "first_fill_write_ratio": round(tier["first_write"] / max(raw["first_write"], fio.get("first_write", 0.0)), 3),
        "reopen_ms_100k": round(reopen, 2),
        "reopen_blocks": a.reopen_blocks,
        "rounds": a.rounds,
        "bytes_verified": verified,
    })


if __name__ == "__main__":
    main()
