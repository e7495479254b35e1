"""Standalone FlexKv demo: no vLLM, no GPU.

A simulated inference engine serves a multi-turn chat workload through FlexKv, calling it the
way vLLM's scheduler does (match -> allocate -> update_state_after_alloc -> launch -> query ->
request_finished). Its "GPU" KV cache is a numpy array in a FlashAttention-like layout, and
the KV of each block is a deterministic function of the token prefix, so every block loaded
from FlexKv is checked byte for byte against what the model would have computed.

    python examples/demo.py [--conversations 32] [--turns 4] [--cpu-cache-mb 512]
    python examples/demo.py --ssd [--ssd-dir DIR]   # CPU + SSD tiers, then a restart
    python examples/demo.py --redis [--redis-url URL]  # + a Redis tier, then a second, cold engine process

With --ssd the CPU tier is smaller than the working set, so blocks are also served from the
SSD tier; then the engine is closed and reopened on the same directory, and the final prompt of
every conversation is served again: those hits come from the SSD cache that survived.

At the end a few lines from the engine's metrics; with FLEXKV_ENABLE_METRICS=1 (and
prometheus_client installed) the engine also serves them on http://127.0.0.1:8080/metrics
(FLEXKV_METRICS_PORT), and the demo shows an excerpt of one scrape, as curl would print it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

import flexkv
from flexkv import metrics
from flexkv.config import redact_url

LAYERS, BS, HEADS, HEAD = 8, 16, 8, 64  # a small model: 128 KiB per block


class SimulatedModel:
    """A paged KV cache whose block contents are a function of the tokens up to that block."""

    def __init__(self, num_blocks: int) -> None:
        self.kv = [np.zeros((2, num_blocks, BS, HEADS, HEAD), dtype=np.float16) for _ in range(LAYERS)]
        self.free = list(range(num_blocks))
        self.span = BS * HEADS * HEAD * 2

    def layers(self) -> list:
        return [flexkv.KVLayer(t.ctypes.data, t.strides[1], self.span, t.strides[0], 2) for t in self.kv]

    @staticmethod
    def expected(prefix_digest: bytes, shape) -> np.ndarray:
        seed = int.from_bytes(prefix_digest[:8], "little")
        words = np.arange(int(np.prod(shape)) // 4, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (words ^ np.uint64(seed)).view(np.float16).reshape(shape)

    def compute(self, block: int, digest: bytes) -> None:
        """'Prefill' one block: write the KV the model would produce for this prefix."""
        for layer, t in enumerate(self.kv):
            t[:, block] = self.expected(digest + bytes([layer]), t[:, block].shape)

    def check(self, block: int, digest: bytes) -> int:
        """Verifies a loaded block; returns the bytes checked."""
        n = 0
        for layer, t in enumerate(self.kv):
            want = self.expected(digest + bytes([layer]), t[:, block].shape)
            if not np.array_equal(t[:, block].view(np.int16), want.view(np.int16)):
                raise SystemExit(f"block {block} (layer {layer}) loaded from FlexKv differs from the model's KV")
            n += t[:, block].nbytes
        return n


def prefix_digests(tokens: list) -> list:
    """Digest of tokens[:16*(i+1)] for each full block i (the model's notion of block identity)."""
    out, h = [], hashlib.blake2b(digest_size=16)
    arr = np.asarray(tokens, dtype=np.int64)
    for i in range(len(tokens) // BS):
        h.update(arr[i * BS:(i + 1) * BS].tobytes())
        out.append(h.copy().digest())
    return out


def workload(conversations: int, turns: int, seed: int):
    rng = random.Random(seed)
    systems = [[rng.randrange(32000) for _ in range(1024)] for _ in range(2)]
    ctx = [list(systems[c % 2]) for c in range(conversations)]
    for t in range(turns):
        order = list(range(conversations))
        rng.shuffle(order)
        for c in order:
            user = [rng.randrange(32000) for _ in range(rng.randint(128, 512))]
            answer = [rng.randrange(32000) for _ in range(rng.randint(64, 256))]
            prompt = ctx[c] + user
            yield f"c{c}-t{t}", prompt, answer
            ctx[c] = prompt + answer


def serve(m: flexkv.KVManager, model: SimulatedModel, rid: str, prompt: list, answer: list, totals: dict) -> None:
    tokens = prompt + answer
    digests = prefix_digests(tokens)
    need = (len(tokens) + BS - 1) // BS
    blocks = [model.free.pop() for _ in range(need)]
    # Scheduler step: ask FlexKv, allocate, plan the load, launch it, poll until it is done.
    hit = m.match(rid, prompt, 0)  # waits for a remote answer (the connector returns None to vLLM instead)
    m.update_state_after_alloc(rid, blocks, hit)
    failed = set()
    if hit:
        t0 = time.perf_counter()
        m.launch_tasks()
        failed = m.wait_finished(rid, "recving", 60.0)
        totals["load_s"] += time.perf_counter() - t0
        # As vLLM does with load errors: the prefix up to the first failed block counts, the
        # rest is recomputed.
        good = next((i for i in range(hit // BS) if blocks[i] in failed), hit // BS)
        totals["recomputed_after_error"] += hit // BS - good
        hit = good * BS
        for i in range(good):
            totals["verified"] += model.check(blocks[i], digests[i])
    # "Compute" the rest: prefill the prompt's remaining blocks and decode the answer.
    for i in range(hit // BS, len(digests)):
        model.compute(blocks[i], digests[i])
    totals["prompt"] += len(prompt)
    totals["hit"] += hit
    # Finished: save the new full blocks, keep ours until FlexKv says the save ended.
    if m.request_finished(rid, tokens, blocks, save=True):
        t0 = time.perf_counter()
        m.launch_tasks()
        m.wait_finished(rid, "sending", 60.0)
        totals["save_s"] += time.perf_counter() - t0
    model.free.extend(blocks)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=32)
    p.add_argument("--turns", type=int, default=4)
    p.add_argument("--cpu-cache-mb", type=int, default=512, help="FlexKv CPU tier size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ssd", action="store_true", help="add an SSD tier and restart the engine at the end")
    p.add_argument("--ssd-dir", default=None, help="SSD cache directory (default: a temporary one)")
    p.add_argument("--ssd-cache-mb", type=int, default=2048)
    p.add_argument("--redis", action="store_true", help="add a Redis tier; a second engine process is then served from it")
    p.add_argument("--redis-url", default=None, help="an existing Redis (default: start redis-server on a free port)")
    p.add_argument("--final-prompts-only", action="store_true", help=argparse.SUPPRESS)  # the second process
    a = p.parse_args()
    if a.final_prompts_only:
        return second_engine(a)
    if a.ssd and a.cpu_cache_mb == 512:
        a.cpu_cache_mb = 64  # smaller than the working set, so the SSD tier serves hits too

    model = SimulatedModel(num_blocks=512)
    block_bytes = LAYERS * 2 * model.span
    cfg = {"cpu_cache_gb": a.cpu_cache_mb / 1024, "block_bytes": block_bytes, "tokens_per_block": BS,
           "model_name": "flexkv-demo-sim"}
    tmp = None
    redis_proc = None
    if a.redis:
        if a.redis_url is None:
            redis_proc, a.redis_url = start_redis()
        cfg["remote_url"] = a.redis_url
    if a.ssd:
        if a.ssd_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="flexkv-demo-ssd-")
            a.ssd_dir = tmp.name
        cfg.update(ssd_cache_gb=a.ssd_cache_mb / 1024, ssd_cache_dir=a.ssd_dir)
    totals = dict(prompt=0, hit=0, verified=0, load_s=0.0, save_s=0.0, recomputed_after_error=0)
    t0 = time.perf_counter()
    with flexkv.KVManager(cfg) as m:
        m.register_kv_caches(model.layers(), len(model.free))
        n = 0
        last = {}
        for rid, prompt, answer in workload(a.conversations, a.turns, a.seed):
            serve(m, model, rid, prompt, answer, totals)
            last[rid.split("-")[0]] = (prompt, answer)
            n += 1
        deadline = time.time() + 60  # let write-through (SSD, Redis) finish before the restart
        while (m.stats()["ssd_writes_pending"] or m.stats()["remote_writes_pending"]) and time.time() < deadline:
            time.sleep(0.05)
        stats = m.stats()
        summary, scrape = metrics.summary_lines(m), scrape_excerpt(metrics.engine_label(m))
    wall = time.perf_counter() - t0
    moved = stats["bytes_moved"]
    xfer = totals["load_s"] + totals["save_s"]
    print(f"requests served           {n}")
    print(f"prompt tokens             {totals['prompt']}")
    print(f"tokens not recomputed     {totals['hit']}  (hit ratio {totals['hit'] / totals['prompt']:.1%})")
    print(f"blocks loaded / saved     {stats['blocks_loaded']} / {stats['blocks_saved']}  "
          f"(evicted {stats['evictions']}, CPU tier {stats['cpu_blocks_used']}/{stats['cpu_blocks_total']} blocks)")
    print(f"bytes moved               {moved / 2**20:.1f} MiB in {xfer:.3f} s of transfers "
          f"= {moved / xfer / 1e9 if xfer else 0:.2f} GB/s")
    print(f"loaded bytes verified     {totals['verified']} (every loaded block equals the model's KV)")
    if totals["recomputed_after_error"]:
        print(f"load errors               {totals['recomputed_after_error']} blocks recomputed")
    print(f"wall time                 {wall:.2f} s")
    ok = totals["hit"] > 0 and totals["verified"] > 0 and stats["pinned_blocks"] == 0
    if a.ssd:
        print(f"SSD tier                  {stats['ssd_blocks_written']} blocks written, {stats['ssd_blocks_read']} read, "
              f"O_DIRECT {'on' if stats['ssd_direct'] else 'off'}")
        again = dict(prompt=0, hit=0, verified=0, load_s=0.0, save_s=0.0, recomputed_after_error=0)
        with flexkv.KVManager(cfg) as m2:  # a new engine on the same SSD directory
            m2.register_kv_caches(model.layers(), 512)
            restored = m2.stats()["ssd_restored_blocks"]
            for conv, (prompt, answer) in last.items():
                serve(m2, model, f"{conv}-again", prompt, answer, again)
            s2 = m2.stats()
        print(f"after restart             {restored} blocks restored from SSD; final prompts served again: "
              f"{again['hit']} of {again['prompt']} tokens not recomputed ({s2['ssd_blocks_read']} blocks read from SSD, "
              f"{again['verified']} bytes verified)")
        ok = ok and again["hit"] > 0 and s2["ssd_blocks_read"] > 0 and again["verified"] > 0
        if tmp is not None:
            tmp.cleanup()
    if a.redis:
        print(f"Redis tier                {stats['remote_blocks_written']} blocks written to {redact_url(a.redis_url)}")
        child = subprocess.run([sys.executable, __file__, "--final-prompts-only", "--redis-url", a.redis_url,
                                "--conversations", str(a.conversations), "--turns", str(a.turns), "--seed", str(a.seed)],
                               capture_output=True, text=True, timeout=600)
        if child.returncode != 0:
            print(child.stdout + child.stderr)
            ok = False
        else:
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"second engine process     cold start, final prompts: {r['hit']} of {r['prompt']} tokens not recomputed "
                  f"({r['remote_blocks_read']} blocks read from Redis, {r['verified']} bytes verified)")
            ok = ok and r["hit"] > 0 and r["remote_blocks_read"] > 0 and r["verified"] > 0
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    print("metrics (first engine)")
    for line in summary:
        print("  " + line)
    if scrape:
        print("\n".join(scrape))
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1


# The series a scrape excerpt shows: FlexKv's own, then FlexKV's names of the same figures.
EXCERPT = ("flexkv_queried_tokens_total", "flexkv_matched_tokens_total", "flexkv_blocks_loaded_total",
           "flexkv_blocks_saved_total", "flexkv_bytes_moved_total", "flexkv_evictions_total", "flexkv_cpu_blocks_used",
           "flexkv_matched_tokens_by_tier_total", "flexkv_lookups_total", "flexkv_transfer_seconds_count",
           "flexkv_transfer_seconds_sum", "flexkv_py_cache_hit_blocks_total",
           'flexkv_py_transfer_bytes_total{engine="{e}",operation="get",transfer_type="H2D"}',
           'flexkv_py_transfer_bytes_total{engine="{e}",operation="put",transfer_type="D2H"}')


def scrape_excerpt(engine: str) -> list:
    """A few lines of one scrape of this process's /metrics (None when it serves none)."""
    where = metrics.address()
    if where is None:
        return []
    url = f"http://{where[0]}:{where[1]}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode("utf-8")
    wanted = [w.replace("{e}", engine) for w in EXCERPT]
    lines = [line for line in text.splitlines()
             if any(line.startswith(w + "{") or line.startswith(w + " ") for w in wanted)
             and (f'engine="{engine}"' in line)
             and not (line.startswith("flexkv_transfer_seconds") and line.endswith(" 0.0"))]  # directions unused here
    return [f"$ curl -s {url}   ({len(text.splitlines())} lines; an excerpt)"] + ["  " + x for x in lines]


def start_redis():
    """A throwaway redis-server on a free loopback port (no persistence)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("--redis needs redis-server (apt-get install redis-server) or --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def second_engine(a) -> int:
    """A new process with an empty engine: the final prompt of every conversation, served from Redis."""
    model = SimulatedModel(num_blocks=512)
    cfg = {"cpu_cache_gb": a.cpu_cache_mb / 1024, "block_bytes": LAYERS * 2 * model.span, "tokens_per_block": BS,
           "model_name": "flexkv-demo-sim", "remote_url": a.redis_url}
    last = {}
    for rid, prompt, answer in workload(a.conversations, a.turns, a.seed):
        last[rid.split("-")[0]] = (prompt, answer)
    totals = dict(prompt=0, hit=0, verified=0, load_s=0.0, save_s=0.0, recomputed_after_error=0)
    with flexkv.KVManager(cfg) as m:
        m.register_kv_caches(model.layers(), 512)
        for conv, (prompt, answer) in last.items():
            serve(m, model, f"{conv}-second", prompt, answer, totals)
        st = m.stats()
    print(json.dumps({**totals, "remote_blocks_read": st["remote_blocks_read"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
