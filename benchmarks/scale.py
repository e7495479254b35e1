"""The control plane at scale: a persistent SSD cache of 10 M blocks reopened, the memory each
block costs, and the time to match a 32K-token prompt against it.

Writes a journal of N records in the SSD tier's own format (chains of 2,048 blocks, as 32K-token
prompts of 16-token blocks make; the first chains carry the real keys of known prompts, the rest
random keys in the same parent-child shape) next to a sparse blocks file (ssd_preallocate false:
the control plane only, no block bytes). Then, in a fresh process, one engine is opened and
closed (the runtime and library are warm, the baseline is taken), and an engine is opened on the
cache: reopen_s_10m is the time of that open (journal replay, restore of every block into the
index), bytes_per_block the process's resident memory after it less before it, over the blocks
(managed and native alike, as the system counts it; peak_rss_gib the high-water mark), and
match_p50_us / match_p99_us the time of get_num_new_matched_tokens on one of the known 32K-token
prompts (an int64 array, a new request each time: every block is hashed and walked), all of
whose blocks are on SSD; each match is checked to cover the whole prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import phase, report

import flexkv

BLOCK_BYTES = 4096  # the smallest slot (one 4 KiB extent): the file is sparse anyway
TPB = 16
CHAIN = 2048        # blocks of a 32K-token prompt
KNOWN = 8           # chains whose keys are those of real prompts (the ones matched)
RECORD = 64
PUT, PUT_ROOT = 1, 2


def config(ssd_dir: str, blocks: int) -> dict:
    return {"num_cpu_blocks": 2 * CHAIN, "block_bytes": BLOCK_BYTES, "tokens_per_block": TPB,
            "ssd_cache_gb": blocks * BLOCK_BYTES / 2**30, "ssd_cache_dir": ssd_dir, "ssd_preallocate": False,
            "use_hugepage_cpu_buffer": False}


def prompt(c: int) -> np.ndarray:
    """Known prompt c: 2,048 full blocks and one more token (vLLM never offers a prompt's last token)."""
    return np.random.default_rng(1000 + c).integers(0, 151_936, size=CHAIN * TPB + 1, dtype=np.int64)


def chain_keys(seed: int, tokens: np.ndarray) -> list[int]:
    """The engine's block keys: key_i = XXH3-128(key_{i-1} || tokens of block i), key_{-1} = the seed."""
    import xxhash

    keys, parent = [], seed
    for b in range(CHAIN):
        parent = xxhash.xxh3_128_intdigest(parent.to_bytes(16, "little") + tokens[b * TPB:(b + 1) * TPB].astype("<i8").tobytes())
        keys.append(parent)
    return keys


def write_journal(path: str, header: bytes, blocks: int) -> None:
    """N put records (slot i = block i of chain i // CHAIN) after the engine's own header."""
    import xxhash

    seed = int.from_bytes(header[8:24], "little")  # the cache fingerprint seeds the empty namespace
    rng = np.random.default_rng(7)
    rec = np.zeros((blocks, RECORD // 8), dtype="<u8")
    keys = rng.integers(0, 2**63, size=(blocks, 2), dtype=np.uint64) * 2 + 1  # lo, hi
    for c in range(min(KNOWN, blocks // CHAIN)):
        ks = chain_keys(seed, prompt(c))
        keys[c * CHAIN:(c + 1) * CHAIN, 0] = [k & (2**64 - 1) for k in ks]
        keys[c * CHAIN:(c + 1) * CHAIN, 1] = [k >> 64 for k in ks]
    slot = np.arange(blocks, dtype=np.uint64)
    root = slot % CHAIN == 0
    rec[:, 0] = np.where(root, PUT_ROOT, PUT).astype(np.uint64) | (slot << np.uint64(32))
    rec[:, 1:3] = keys
    rec[1:, 3:5] = keys[:-1]
    rec[root, 3:5] = 0
    rec[:, 5:7] = rng.integers(0, 2**63, size=(blocks, 2), dtype=np.uint64)  # seals: never read here
    h = xxhash.xxh3_64_intdigest
    mv = memoryview(rec.reshape(-1).view(np.uint8))
    rec[:, 7] = np.fromiter((h(mv[i:i + 56]) for i in range(0, blocks * RECORD, RECORD)), dtype=np.uint64, count=blocks)
    with open(path, "wb") as f:
        f.write(header)
        rec.tofile(f)


def rss_bytes() -> tuple[int, int]:
    """Resident and peak resident memory of this process."""
    got = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) * 1024
    return got["VmRSS"], got["VmHWM"]


def measure(ssd_dir: str, blocks: int, matches: int) -> dict:
    """In a fresh process: open the cache, memory before and after, then the matches."""
    warm = flexkv.KVManager({"num_cpu_blocks": 16, "block_bytes": BLOCK_BYTES, "use_hugepage_cpu_buffer": False})
    warm.close()
    rss0, _ = rss_bytes()
    t0 = time.perf_counter()
    m = flexkv.KVManager(config(ssd_dir, blocks))
    reopen = time.perf_counter() - t0
    rss1, peak = rss_bytes()
    st = m.stats()
    assert st["ssd_restored_blocks"] == blocks, (st["ssd_restored_blocks"], st["warnings"])
    kv = np.zeros((CHAIN, BLOCK_BYTES), dtype=np.uint8)  # a KV cache to offer loads into (nothing is copied)
    m.register_kv_caches([flexkv.KVLayer(kv.ctypes.data, BLOCK_BYTES, BLOCK_BYTES)], CHAIN)
    prompts = [prompt(c) for c in range(min(KNOWN, blocks // CHAIN))]
    times = []
    for k in range(matches):
        rid = f"q{k}"
        t = time.perf_counter()
        n = m.get_num_new_matched_tokens(rid, prompts[k % len(prompts)], 0)
        times.append((time.perf_counter() - t) * 1e6)
        assert n == CHAIN * TPB, n
        m.update_state_after_alloc(rid, [], 0)
        m.request_finished(rid, None, (), save=False)
    m.close()
    times = times[len(times) // 10:]  # the first calls warm the caches
    times.sort()
    return {"reopen_s": reopen, "rss_before": rss0, "rss_after": rss1, "peak_rss": peak,
            "match_p50_us": statistics.median(times), "match_p99_us": times[int(0.99 * (len(times) - 1))]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=10_000_000)
    p.add_argument("--matches", type=int, default=300)
    p.add_argument("--dir", default=None, help="directory for the cache files (default: a temporary one)")
    p.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # the child process: the cache directory
    a = p.parse_args()
    if a.measure:
        print(json.dumps(measure(a.measure, a.blocks, a.matches)))
        return
    blocks = -(-a.blocks // CHAIN) * CHAIN  # whole chains, at least as many blocks as asked
    root = tempfile.mkdtemp(prefix="flexkv-bench-scale-", dir=a.dir)
    try:
        ssd = os.path.join(root, "ssd")
        phase(f"an empty engine on a sparse {blocks * BLOCK_BYTES / 2**30:.0f} GiB cache, for the journal's header")
        flexkv.KVManager(config(ssd, blocks)).close()
        journal = os.path.join(ssd, "flexkv-journal.bin")
        with open(journal, "rb") as f:
            header = f.read(64)
        phase(f"writing a journal of {blocks:,} records ({blocks * RECORD / 2**20:.0f} MiB)")
        t0 = time.perf_counter()
        write_journal(journal, header, blocks)
        phase(f"journal written in {time.perf_counter() - t0:.1f} s; a fresh process opens the cache and matches")
        out = subprocess.run([sys.executable, __file__, "--measure", ssd, "--blocks", str(blocks), "--matches", str(a.matches)],
                             capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise SystemExit(f"the measuring process failed:\n{out.stderr}")
        got = json.loads(out.stdout.strip().splitlines()[-1])
        journal_bytes = os.path.getsize(journal)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report({
        "blocks": blocks,
        "block_bytes": BLOCK_BYTES,
        "journal_bytes": journal_bytes,
        "reopen_s_10m": round(got["reopen_s"], 3) if blocks >= 10_000_000 else None,  # measured, never scaled
        "reopen_s": round(got["reopen_s"], 3),
        "bytes_per_block": round((got["rss_after"] - got["rss_before"]) / blocks, 1),
        "rss_before_mib": round(got["rss_before"] / 2**20, 1),
        "rss_after_mib": round(got["rss_after"] / 2**20, 1),
        "peak_rss_gib": round(got["peak_rss"] / 2**30, 2),
        "match_tokens": CHAIN * TPB,
        "match_p50_us": round(got["match_p50_us"], 1),
        "match_p99_us": round(got["match_p99_us"], 1),
        "matches": a.matches,
    })


if __name__ == "__main__":
    main()
