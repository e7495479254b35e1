"""Put and get between the CPU tier and a KV cache in another process (process_vm_readv/writev),
against in-process memcpy of the same bytes with the same number of threads, in the same run.

Rounds interleave the two: each round times a cross-process put and get, then an in-process
memcpy of the same bytes, and its ratio is min(put, get) / memcpy of that round; the figure is
the median of the rounds' ratios (ratio_min the worst), so a moment when the shared machine is
busy lowers one round, not the comparison.

The child process (spawned, as vLLM starts its workers) holds the cache tensor, moved to huge
pages as FlexKv's worker connector does (--small-pages leaves it); it checks that
every block loaded into it equals the block saved from it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

from _common import REPO, phase, report, wait_all
import statistics

from cpu_copy import MemcpyRound

sys.path.insert(0, str(REPO / "tests" / "python"))
import xproc_worker  # noqa: E402

import flexkv  # noqa: E402

SPAN = 1 << 20  # bytes per K or V span: a block is 2 MiB


def anon_huge_bytes(pid: int) -> int:
    """Bytes of a process's anonymous memory on transparent huge pages (0 where not reported).
    The kernel pins the worker's pages for each copy, a 4 KiB page at a time where it is not
    on a huge page: how much of both sides is on huge pages explains a slow round."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=7, help="interleaved rounds")
    p.add_argument("--small-pages", action="store_true",
                   help="leave the child's cache on 4 KiB pages (FlexKv's worker connector moves it to huge pages)")
    a = p.parse_args()
    per_req, reqs = 64, max(1, int(a.gib * (1 << 30)) // (2 * SPAN) // 64)
    blocks = per_req * reqs
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=xproc_worker.serve, args=(child, 2 * blocks, SPAN, 7, not a.small_pages), daemon=True)
    proc.start()
    info = parent.recv()
    parent.send(("zero", blocks, 2 * blocks))  # fault in the destination half before timing
    parent.recv()
    m = flexkv.KVManager({"num_cpu_blocks": blocks, "block_bytes": 2 * SPAN, "transfer_threads": a.threads})
    m.register_kv_caches([flexkv.KVLayer(info["base"], info["block_stride"], info["span"], info["kv_stride"], 2)],
                         2 * blocks, pid=info["pid"])
    nbytes = blocks * 2 * SPAN
    memcpy = MemcpyRound(nbytes, a.threads)
    puts, gets, copies, ratios = [], [], [], []
    for run in range(a.runs + 1):  # run 0 faults in the CPU pool
        m.reset()
        ids = set()
        for r in range(reqs):
            toks = list(range(r * 10**6, r * 10**6 + per_req * 16 + 1))
            assert m.request_finished(f"p{run}-{r}", toks, list(range(r * per_req, (r + 1) * per_req)))
            ids.add(f"p{run}-{r}")
        t0 = time.perf_counter()
        m.launch_tasks()
        put_s = wait_all(m, ids, "sending") - t0
        ids = set()
        for r in range(reqs):
            toks = list(range(r * 10**6, r * 10**6 + per_req * 16 + 1))
            assert m.get_num_new_matched_tokens(f"g{run}-{r}", toks, 0) == per_req * 16
            m.update_state_after_alloc(f"g{run}-{r}", list(range(blocks + r * per_req, blocks + (r + 1) * per_req)),
                                       per_req * 16)
            ids.add(f"g{run}-{r}")
        t0 = time.perf_counter()
        m.launch_tasks()
        get_s = wait_all(m, ids, "recving") - t0
        for r in range(reqs):
            m.request_finished(f"g{run}-{r}", None, (), save=False)
        base = memcpy.gbps()
        if run:
            put, get = nbytes / put_s / 1e9, nbytes / get_s / 1e9
            puts.append(put)
            gets.append(get)
            copies.append(base)
            ratios.append(min(put, get) / base)
            phase(f"round {run}/{a.runs}: put {put:.2f} GB/s, get {get:.2f} GB/s, memcpy {base:.2f} GB/s")
    worker_huge, pool_huge = anon_huge_bytes(info["pid"]), anon_huge_bytes(os.getpid())
    parent.send(("same", [(i, blocks + i) for i in range(blocks)]))
    if parent.recv() is not True:
        raise SystemExit("blocks loaded into the child differ from those saved from it")
    m.close()
    parent.send(("exit",))
    proc.join(10)
    report({
        "bytes_each_way": nbytes,
        "threads": a.threads,
        "worker_huge_pages": not a.small_pages,
        "rounds": a.runs,
        "xproc_put_gbps": round(statistics.median(puts), 3),
        "xproc_get_gbps": round(statistics.median(gets), 3),
        "memcpy_gbps": round(statistics.median(copies), 3),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "best_ratio": round(min(max(puts), max(gets)) / max(copies), 3),  # best of each, as before
        "bytes_verified": nbytes,
        # On huge pages at the end: the worker's cache is 2x the bytes moved; this process holds
        # the CPU pool (1x) and the memcpy round's buffers.
        "worker_huge_mib": worker_huge >> 20,
        "engine_process_huge_mib": pool_huge >> 20,
    })


if __name__ == "__main__":
    main()
