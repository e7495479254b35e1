"""Put then get of >= 1 GiB of blocks between a registered host KV cache and the CPU pool.

Layout as Llama-3-8B: 32 layers, separate K and V, spans of 16 tokens x 8 heads x 128 x fp16
(32 KiB), so a block is 2 MiB. The same run measures memcpy of the same bytes with the same
number of threads (libc memmove from Python threads, which ctypes runs without the GIL) and
prints the ratio. Every byte that comes back is compared with what was saved.
"""

from __future__ import annotations

import argparse
import ctypes
import threading
import time

import numpy as np

from _common import report, wait_all

import flexkv

LAYERS, BS, HEADS, HEAD = 32, 16, 8, 128


class MemcpyRound:
    """In-process memcpy of nbytes over `threads` threads (libc memmove from Python threads,
    which ctypes runs without the GIL); both buffers are written once here, so no timed copy
    faults a page in."""

    def __init__(self, nbytes: int, threads: int):
        self.src = np.ones(nbytes, dtype=np.uint8)
        self.dst = np.full(nbytes, 2, dtype=np.uint8)
        self.threads = threads
        self.per = nbytes // threads

    def gbps(self) -> float:
        """One timed copy."""
        def part(i):
            ctypes.memmove(self.dst.ctypes.data + i * self.per, self.src.ctypes.data + i * self.per, self.per)
        ts = [threading.Thread(target=part, args=(i,)) for i in range(self.threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        assert self.dst[0] == 1 and self.dst[self.per * self.threads - 1] == 1
        return self.per * self.threads / dt / 1e9


def memcpy_gbps(nbytes: int, threads: int, runs: int) -> float:
    """Best of `runs` copies."""
    r = MemcpyRound(nbytes, threads)
    return max(r.gbps() for _ in range(runs))


def one_round(m, requests, per_req, blocks, tag):
    ids = set()
    for r in range(requests):
        toks = list(range(r * 1_000_000, r * 1_000_000 + per_req * BS + 1))
        src = list(range(r * per_req, (r + 1) * per_req))
        assert m.request_finished(f"{tag}p{r}", toks, src)
        ids.add(f"{tag}p{r}")
    t0 = time.perf_counter()
    m.launch_tasks()
    put_s = wait_all(m, ids, "sending") - t0
    ids = set()
    for r in range(requests):
        toks = list(range(r * 1_000_000, r * 1_000_000 + per_req * BS + 1))
        dst = list(range(blocks + r * per_req, blocks + (r + 1) * per_req))
        assert m.get_num_new_matched_tokens(f"{tag}g{r}", toks, 0) == per_req * BS
        m.update_state_after_alloc(f"{tag}g{r}", dst, per_req * BS)
        ids.add(f"{tag}g{r}")
    t0 = time.perf_counter()
    m.launch_tasks()
    get_s = wait_all(m, ids, "recving") - t0
    for r in range(requests):
        m.request_finished(f"{tag}g{r}", None, (), save=False)
    return put_s, get_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="bytes moved each way, in GiB")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()

    span = BS * HEADS * HEAD * 2
    block_bytes = LAYERS * 2 * span
    requests = 8
    per_req = max(1, int(a.gib * (1 << 30)) // block_bytes // requests)
    blocks = requests * per_req
    nbytes = blocks * block_bytes
    # Source blocks 0..blocks-1 hold random bytes; loads land in blocks..2*blocks-1.
    rng = np.random.default_rng(0)
    kv = []
    for _ in range(LAYERS):
        t = np.zeros((2, 2 * blocks, BS, HEADS, HEAD), dtype=np.float16)
        t[:, :blocks].view(np.int64)[...] = rng.integers(-(1 << 62), 1 << 62, size=t[:, :blocks].view(np.int64).shape)
        kv.append(t)
    layers = [flexkv.KVLayer(t.ctypes.data, t.strides[1], span, t.strides[0], 2) for t in kv]

    m = flexkv.KVManager({"num_cpu_blocks": blocks, "block_bytes": block_bytes, "transfer_threads": a.threads})
    m.register_kv_caches(layers, 2 * blocks)
    one_round(m, requests, per_req, blocks, "warm")  # faults in the pool's pages
    best_put = best_get = float("inf")
    for run in range(a.runs):
        m.reset()
        for t in kv:
            t[:, blocks:] = 0
        put_s, get_s = one_round(m, requests, per_req, blocks, f"r{run}")
        best_put, best_get = min(best_put, put_s), min(best_get, get_s)
    verified = 0
    for t in kv:
        if not np.array_equal(t[:, blocks:].view(np.int16), t[:, :blocks].view(np.int16)):
            raise SystemExit("loaded bytes differ from the saved ones")
        verified += t[:, blocks:].nbytes
    m.close()
    base = memcpy_gbps(nbytes, a.threads, a.runs)
    put_gbps, get_gbps = nbytes / best_put / 1e9, nbytes / best_get / 1e9
    report({
        "bytes_each_way": nbytes,
        "block_bytes": block_bytes,
        "threads": a.threads,
        "put_gbps": round(put_gbps, 3),
        "get_gbps": round(get_gbps, 3),
        "memcpy_gbps": round(base, 3),
        "ratio": round(min(put_gbps, get_gbps) / base, 3),
        "bytes_verified": verified,
    })


if __name__ == "__main__":
    main()
