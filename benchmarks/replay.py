"""Control-plane replay of the chat trace (flexkv.workload) through the C ABI.

For each request: match the prompt, then insert prompt + output (token ids already in int64
buffers). Reports the matched tokens against the reference replayer (unlimited capacity, and
20,000 blocks with LRU), the time of the whole replay in one flexkv_index_replay call
(replay_ms unlimited, capacity_replay_ms at 20,000 blocks: hashing, index walks and LRU
eviction with no Python in between), the same replay driven request by request through ctypes
(ctypes_replay_ms), and the per-call cost of get_num_new_matched_tokens on a 32K-token prompt
given as a Python list (first call, repeated call).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from array import array

from _common import phase, reference_matched, report, trace

import flexkv
from flexkv import _native


def replay_ctypes(bufs, capacity):
    lib = _native.lib()
    h = ctypes.c_uint64()
    _native.check(lib.flexkv_index_create(16, capacity, ctypes.byref(h)))
    out = ctypes.c_int32()
    ref = ctypes.byref(out)
    match, insert, idx = lib.flexkv_index_match, lib.flexkv_index_insert, h.value
    matched = 0
    t0 = time.perf_counter()
    for i, (pa, pn, ta, tn) in enumerate(bufs):
        match(idx, i, pa, pn, ref)
        matched += out.value
        insert(idx, i, ta, tn, ref)
    dt = time.perf_counter() - t0
    lib.flexkv_index_destroy(idx)
    return matched, dt


def replay_csharp(tokens, plen, tlen, capacity):
    lib = _native.lib()
    h = ctypes.c_uint64()
    _native.check(lib.flexkv_index_create(16, capacity, ctypes.byref(h)))
    matched = (ctypes.c_int32 * len(plen))()
    total = ctypes.c_int64()
    t0 = time.perf_counter()
    _native.check(lib.flexkv_index_replay(h.value, tokens.buffer_info()[0], len(tokens), plen.buffer_info()[0],
                                          tlen.buffer_info()[0], len(plen), matched, ctypes.byref(total)))
    dt = time.perf_counter() - t0
    lib.flexkv_index_destroy(h.value)
    return total.value, dt


def per_call_cost(repeats: int):
    """First and repeated get_num_new_matched_tokens on a 32K-token prompt from a Python list."""
    import random

    rng = random.Random(0)
    prompt = [rng.randrange(151936) for _ in range(32 * 1024)]
    host = (ctypes.c_uint8 * (64 * 4096))()
    m = flexkv.KVManager({"num_cpu_blocks": 4096, "block_bytes": 64, "use_hugepage_cpu_buffer": False})
    m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(host), 64, 64)], 4096)
    assert m.put("seed", prompt + [0], list(range(2048)))
    firsts, repeats_us = [], []
    for k in range(5):
        t0 = time.perf_counter()
        n = m.get_num_new_matched_tokens(f"r{k}", prompt, 0)
        firsts.append((time.perf_counter() - t0) * 1e3)
        assert n == len(prompt)
        t0 = time.perf_counter()
        for _ in range(repeats):
            m.get_num_new_matched_tokens(f"r{k}", prompt, 0)
        repeats_us.append((time.perf_counter() - t0) / repeats * 1e6)
        m.update_state_after_alloc(f"r{k}", [], 0)
    m.close()
    return statistics.median(firsts), statistics.median(repeats_us)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--capacity", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()

    phase("chat trace (generated once into build/bench)")
    reqs = trace(a.seed)
    bufs, keep = [], []
    tokens, plen, tlen = array("q"), array("q"), array("q")
    for r in reqs:
        pa, ta = array("q", r["prompt"]), array("q", r["prompt"] + r["output"])
        keep += [pa, ta]
        bufs.append((pa.buffer_info()[0], len(pa), ta.buffer_info()[0], len(ta)))
        tokens.extend(ta)
        plen.append(len(pa))
        tlen.append(len(ta))

    phase(f"reference replay, unlimited and at {a.capacity:,} blocks")
    ref_unlimited = reference_matched(reqs, None)
    ref_capacity = reference_matched(reqs, a.capacity)
    unlimited = 1 << 30
    phase(f"engine replays through ctypes and in C# ({a.runs} runs each), then per-call costs")
    runs = [replay_ctypes(bufs, unlimited) for _ in range(a.runs)]
    matched = runs[0][0]
    assert all(r[0] == matched for r in runs)
    cap_matched, _ = replay_ctypes(bufs, a.capacity)
    # One C-ABI call per replay; unlimited and capacity runs interleaved, so a busy moment on a
    # shared machine hits both alike.
    cs, cap = [], []
    for _ in range(a.runs):
        cs.append(replay_csharp(tokens, plen, tlen, unlimited))
        cap.append(replay_csharp(tokens, plen, tlen, a.capacity))
    assert all(c[0] == matched for c in cs)
    assert all(c[0] == cap_matched for c in cap)
    first_ms, repeat_us = per_call_cost(2000)
    replay_ms = statistics.median(c[1] for c in cs) * 1e3
    capacity_ms = statistics.median(c[1] for c in cap) * 1e3
    report({
        "requests": len(reqs),
        "prompt_tokens": sum(len(r["prompt"]) for r in reqs),
        "matched_tokens": matched,
        "reference_matched_tokens": ref_unlimited,
        "capacity_blocks": a.capacity,
        "capacity_matched_tokens": cap_matched,
        "reference_capacity_matched_tokens": ref_capacity,
        "capacity_deviation": round(abs(cap_matched - ref_capacity) / ref_capacity, 6),
        "replay_ms": round(replay_ms, 3),
        "replay_ms_min": round(min(c[1] for c in cs) * 1e3, 3),
        "capacity_replay_ms": round(capacity_ms, 3),
        "capacity_replay_ms_min": round(min(c[1] for c in cap) * 1e3, 3),
        "capacity_overhead": round(capacity_ms / replay_ms - 1, 3),
        "csharp_only_ms": round(replay_ms, 3),  # the older name of replay_ms
        "ctypes_replay_ms": round(statistics.median(r[1] for r in runs) * 1e3, 3),
        "ctypes_replay_ms_min": round(min(r[1] for r in runs) * 1e3, 3),
        "first_call_ms": round(first_ms, 4),
        "repeat_call_us": round(repeat_us, 3),
        "matches_reference": matched == ref_unlimited,
    })


if __name__ == "__main__":
    main()
