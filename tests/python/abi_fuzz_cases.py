"""Cases of the C ABI fuzz run (test_abi_fuzz.py) and the child process that runs them.

A case is one call of a flexkv_* export, written as a Python expression over a small set of
names (live and dead handles, buffers, out-variables; see ``Env``) so that a failure can be
reported as the exact call. Every case passes something the header calls invalid, so each must
return a negative status and leave a message in flexkv_last_error, and the process must live.

Run as a script, this file is the child: it reads a JSON list of cases on stdin, runs them in
order and prints one JSON line per case as soon as it returns (so that when the process dies,
the parent knows which case killed it).
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import sys
from typing import Dict, List

SEED = 7321
I32_MAX, U64_MAX = 2 ** 31 - 1, 2 ** 64 - 1
HUGE_LENGTHS = [2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 63, U64_MAX]  # past any buffer: Args.Span refuses > int.MaxValue
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\xfe", b"\x80abc", b"\xf4\x90\x80\x80"]

ENGINE_CALLS = [
    "flexkv_engine_shutdown({h})",
    "flexkv_reset({h})",
    "flexkv_stats({h}, chars(4096), 4096, size())",
    "flexkv_wait({h}, 0, i32out())",
    "flexkv_metrics_read({h}, i64(64), 64, size())",
    "flexkv_launch_tasks({h}, i32out())",
    "flexkv_query_finished_task({h}, u8(1024), 1024, size(), i32(64), 64, size())",
    "flexkv_get_num_new_matched_tokens({h}, b'r', 1, TOKS, 33, 0, None, 0, i32out())",
    "flexkv_update_state_after_alloc({h}, b'r', 1, BLOCKS, 3, 32)",
    "flexkv_request_finished({h}, b'r', 1, TOKS, 33, BLOCKS, 3, 1, None, 0, i32out())",
    "flexkv_cancel_request({h}, b'r', 1)",
    "flexkv_register_kv_caches({h}, good_layers(), 1, 16)",
    "flexkv_register_cuda_kv_caches({h}, good_layers(), 1, 16, 0)",
    "flexkv_register_process_kv_caches({h}, ME, good_layers(), 1, 16)",
    "flexkv_register_rank_kv_caches({h}, 0, 2, ME, good_layers(), 1, 16, i32out())",
    "flexkv_register_rank_cuda_kv_caches({h}, 0, 2, ipc(1), good_layers(), 1, 16, i32out())",
    "flexkv_deregister_rank({h}, 0)",
    "flexkv_kv_events_enable({h}, 16)",
    "flexkv_set_block_hashes({h}, b'known', 5, 0, b'x' * 32, 32, 1)",
    "flexkv_kv_events_take({h}, kvev(4), 4, size())",
    "flexkv_engine_destroy({h})",
]
INDEX_CALLS = [
    "flexkv_index_match({h}, 1, TOKS, 33, i32out())",
    "flexkv_index_insert({h}, 1, TOKS, 33, i32out())",
    "flexkv_index_info({h}, i64out(), i64out())",
    "flexkv_index_replay({h}, TOKS, 33, i64(1, 16), i64(1, 33), 1, i32(1), i64out())",
    "flexkv_index_destroy({h})",
]

NULLS = [
    "flexkv_abi_version(None)",
    "flexkv_engine_create(None, 10, u64out())",
    "flexkv_engine_create(cfg(), 70, None)",
    "flexkv_get_num_new_matched_tokens(E, None, 3, TOKS, 33, 0, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'fresh', 5, None, 33, 0, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'r', 1, TOKS, 33, 0, None, 4, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'r', 1, TOKS, 33, 0, None, 0, None)",
    "flexkv_update_state_after_alloc(E, b'known', 5, None, 3, 32)",
    "flexkv_update_state_after_alloc(E, None, 5, BLOCKS, 3, 32)",
    "flexkv_request_finished(E, b'known', 5, TOKS, 33, None, 3, 1, None, 0, i32out())",
    "flexkv_request_finished(E, b'known', 5, None, 9000, BLOCKS, 3, 1, None, 0, i32out())",
    "flexkv_request_finished(E, b'known', 5, TOKS, 33, BLOCKS, 3, 1, None, 7, i32out())",
    "flexkv_request_finished(E, b'known', 5, TOKS, 33, BLOCKS, 3, 1, None, 0, None)",
    "flexkv_cancel_request(E, None, 3)",
    "flexkv_stats(E, None, 1 << 20, size())",
    "flexkv_stats(E, chars(4096), 4096, None)",
    "flexkv_wait(E, 0, None)",
    "flexkv_launch_tasks(E, None)",
    "flexkv_metrics_read(E, None, 10, size())",
    "flexkv_metrics_read(E, i64(64), 64, None)",
    "flexkv_metrics_names(None, 1 << 20, size())",
    "flexkv_metrics_names(chars(1 << 16), 1 << 16, None)",
    "flexkv_query_finished_task(E, None, 100, size(), i32(8), 8, size())",
    "flexkv_query_finished_task(E, u8(100), 100, None, i32(8), 8, size())",
    "flexkv_query_finished_task(E, u8(100), 100, size(), None, 8, size())",
    "flexkv_query_finished_task(E, u8(100), 100, size(), i32(8), 8, None)",
    "flexkv_register_kv_caches(fresh(), None, 2, 8)",
    "flexkv_register_cuda_kv_caches(fresh(), None, 1, 8, 0)",
    "flexkv_register_process_kv_caches(fresh(), ME, None, 1, 8)",
    "flexkv_register_rank_kv_caches(fresh(), 0, 2, ME, None, 1, 8, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, 2, ME, good_layers(2048), 1, 8, None)",
    "flexkv_register_rank_cuda_kv_caches(fresh(), 0, 2, None, good_layers(2048), 1, 8, i32out())",
    "flexkv_register_rank_cuda_kv_caches(fresh(), 0, 2, ipc(1), None, 1, 8, i32out())",
    "flexkv_cuda_ipc_export(BUF, None)",
    "flexkv_index_create(16, 10, None)",
    "flexkv_index_match(I, 1, None, 5, i32out())",
    "flexkv_index_match(I, 1, TOKS, 33, None)",
    "flexkv_index_insert(I, 1, None, 5, i32out())",
    "flexkv_index_info(I, None, i64out())",
    "flexkv_index_replay(I, None, 10, i64(1, 5), i64(1, 10), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, None, i64(1, 10), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(1, 5), i64(1, 10), 1, None, i64out())",
    "flexkv_last_error(chars(64), 64, None)",
    "flexkv_kv_events_take(E, None, 4, size())",
    "flexkv_kv_events_take(E, kvev(4), 4, None)",
    "flexkv_set_block_hashes(E, None, 5, 0, b'x' * 32, 32, 1)",
    "flexkv_set_block_hashes(E, b'known', 5, 0, None, 32, 1)",
]

LENGTH_CALLS = [  # {n}: a length no buffer has
    "flexkv_engine_create(cfg(), {n}, u64out())",
    "flexkv_get_num_new_matched_tokens(E, b'r', {n}, TOKS, 33, 0, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'r', 1, TOKS, {n}, 0, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'known', 5, None, {n}, 0, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'r', 1, TOKS, 33, 0, b'ns', {n}, i32out())",
    "flexkv_update_state_after_alloc(E, b'known', {n}, BLOCKS, 3, 32)",
    "flexkv_update_state_after_alloc(E, b'known', 5, BLOCKS, {n}, 32)",
    "flexkv_request_finished(E, b'known', {n}, TOKS, 33, BLOCKS, 3, 1, None, 0, i32out())",
    "flexkv_request_finished(E, b'known', 5, TOKS, {n}, BLOCKS, 3, 1, None, 0, i32out())",
    "flexkv_request_finished(E, b'known', 5, TOKS, 33, BLOCKS, {n}, 1, None, 0, i32out())",
    "flexkv_request_finished(E, b'known', 5, TOKS, 33, BLOCKS, 3, 1, b'ns', {n}, i32out())",
    "flexkv_cancel_request(E, b'known', {n})",
    "flexkv_set_block_hashes(E, b'known', {n}, 0, b'x' * 32, 32, 1)",
    "flexkv_set_block_hashes(E, b'known', 5, 0, b'x' * 32, 32, {n})",
    "flexkv_set_block_hashes(E, b'known', 5, 0, b'x' * 32, {n}, 1)",
    "flexkv_register_kv_caches(fresh(), good_layers(), {n}, 16)",
    "flexkv_register_process_kv_caches(fresh(), ME, good_layers(), {n}, 16)",
    "flexkv_register_rank_kv_caches(fresh(), 0, 2, ME, good_layers(2048), {n}, 16, i32out())",
    "flexkv_index_match(I, 1, TOKS, {n}, i32out())",
    "flexkv_index_insert(I, 1, TOKS, {n}, i32out())",
    "flexkv_index_replay(I, TOKS, {n}, i64(1, 16), i64(1, 33), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(1, 16), i64(1, 33), {n}, i32(1), i64out())",
]

VALUES = [  # int32 arguments out of their range
    "flexkv_get_num_new_matched_tokens(E, b'known', 5, TOKS, 33, -16, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'known', 5, TOKS, 33, -1, None, 0, i32out())",
    "flexkv_get_num_new_matched_tokens(E, b'known', 5, TOKS, 33, -2147483648, None, 0, i32out())",
    "flexkv_update_state_after_alloc(E, b'known', 5, BLOCKS, 3, -16)",
    "flexkv_update_state_after_alloc(E, b'known', 5, BLOCKS, 3, -2147483648)",
    "flexkv_update_state_after_alloc(E, b'known', 5, BLOCKS, 3, 2147483647)",
    "flexkv_update_state_after_alloc(E, b'known', 5, i32(3, 2147483647, 1, 2), 3, 32)",
    "flexkv_update_state_after_alloc(E, b'known', 5, i32(3, 0, -1, 2), 3, 32)",
    "flexkv_register_kv_caches(fresh(), good_layers(), 1, 0)",
    "flexkv_register_kv_caches(fresh(), good_layers(), 1, -1)",
    "flexkv_register_kv_caches(fresh(), good_layers(), 1, -2147483648)",
    "flexkv_register_process_kv_caches(fresh(), 0, good_layers(), 1, 16)",
    "flexkv_register_process_kv_caches(fresh(), -1, good_layers(), 1, 16)",
    "flexkv_register_process_kv_caches(fresh(), 4194311, good_layers(), 1, 16)",
    "flexkv_register_rank_kv_caches(fresh(), -1, 2, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 2, 2, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 2147483647, 2, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, 0, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, -1, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, 1073741824, ME, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, 2, 0, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_rank_kv_caches(fresh(), 0, 2, 4194311, good_layers(2048), 1, 16, i32out())",
    "flexkv_register_cuda_kv_caches(fresh(), good_layers(), 1, 16, -1)",
    "flexkv_deregister_rank(E, -1)",
    "flexkv_deregister_rank(E, 5)",
    "flexkv_index_create(0, 10, u64out())",
    "flexkv_index_create(-16, 10, u64out())",
    "flexkv_index_create(16, 0, u64out())",
    "flexkv_index_create(16, -1, u64out())",
    "flexkv_index_create(16, 1 << 40, u64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(1, 5), i64(1, -1), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(1, -5), i64(1, 10), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(1, 20), i64(1, 10), 1, i32(1), i64out())",
    "flexkv_index_replay(I, TOKS, 33, i64(2, 5, 5), i64(2, 30, 30), 2, i32(2), i64out())",
    "flexkv_kv_events_enable(E, 0)",
    "flexkv_kv_events_enable(E, -1)",
    "flexkv_kv_events_enable(E, 2147483647)",
    "flexkv_set_block_hashes(E, b'known', 5, 0, b'x' * 33, 33, 1)",
    "flexkv_set_block_hashes(E, b'known', 5, 0, b'x' * 32, 0, 1)",
    "flexkv_set_block_hashes(E, b'known', 5, -1, b'x' * 32, 32, 1)",
    "flexkv_cuda_ipc_export(0, ipc(1))",
    "flexkv_cuda_ipc_export(BUF, ipc(1))",
]

SMALL_BUFFERS = [
    "flexkv_stats(E, None, 0, size())",
    "flexkv_stats(E, chars(1), 1, size())",
    "flexkv_stats(E, chars(16), 16, size())",
    "flexkv_metrics_names(None, 0, size())",
    "flexkv_metrics_names(chars(1), 1, size())",
    "flexkv_metrics_names(chars(64), 64, size())",
    "flexkv_last_error(None, 0, size())",
    "flexkv_last_error(chars(1), 1, size())",
    "flexkv_query_finished_task(pending(E), None, 0, size(), i32(8), 8, size())",
    "flexkv_query_finished_task(pending(E), u8(1), 1, size(), i32(8), 8, size())",
]

UTF8_CALLS = [
    "flexkv_get_num_new_matched_tokens(E, {id}, {n}, TOKS, 33, 0, None, 0, i32out())",
    "flexkv_update_state_after_alloc(E, {id}, {n}, BLOCKS, 3, 32)",
    "flexkv_request_finished(E, {id}, {n}, TOKS, 33, BLOCKS, 3, 1, None, 0, i32out())",
    "flexkv_cancel_request(E, {id}, {n})",
    "flexkv_set_block_hashes(E, {id}, {n}, 0, b'x' * 32, 32, 1)",
]

CONFIGS = [  # engine_create(cfg(...)): each must be refused before anything is allocated
    "num_cpu_blocks=2147483647", "num_cpu_blocks=2147483648", "num_cpu_blocks=2 ** 32", "num_cpu_blocks=2 ** 63 - 1",
    "num_cpu_blocks=0", "num_cpu_blocks=-1", "num_cpu_blocks=8.5", "num_cpu_blocks='8x'",
    "tokens_per_block=2 ** 30", "tokens_per_block=0", "tokens_per_block=-16", "tokens_per_block=2 ** 31",
    "block_bytes=None, num_layers=2 ** 30, num_kv_heads=2 ** 30, head_size=2 ** 30",
    "block_bytes=None, num_layers=1 << 20, num_kv_heads=1 << 10, head_size=1 << 10, tokens_per_block=4096",
    "block_bytes=2 ** 62", "block_bytes=0", "block_bytes=-4096",
    "tp_size=0", "tp_size=2 ** 30, tp_rank=2 ** 30", "tp_rank=-1",
    "transfer_threads=2 ** 30", "transfer_threads=0", "transfer_threads=-1",
    "transfer_queue_capacity=2 ** 31", "transfer_queue_capacity=0",
    "num_cpu_blocks=None, cpu_cache_gb=1e30", "num_cpu_blocks=None, cpu_cache_gb=-1", "num_cpu_blocks=None, cpu_cache_gb=1e-30",
    "max_memory_fraction=1e9", "max_memory_fraction=0", "bogus_key=1", "eviction_policy='fifo'",
]
RAW_CONFIGS = [b"[1]", b"null", b'"x"', b"[" * 100_000, b'{"num_cpu_blocks": 1e400, "block_bytes": 4096}',
               b'{"model_name": "\xff\xfe", "num_cpu_blocks": 8, "block_bytes": 4096}', b"{\"num_cpu_blocks\": 8,",
               b"\x00\x01\x02", b""]

LAYERS = [  # register_kv_caches(fresh(), layers(...), n, blocks) on an engine of 4096-byte blocks
    "layers((BUF, 4096, 0, 4096, 0, 0)), 1, 16",
    "layers((BUF, 4096, 0, 4096, 3, 0)), 1, 16",
    "layers((BUF, 4096, 0, 4096, -1, 0)), 1, 16",
    "layers((BUF, 4096, 0, 0, 1, 0)), 1, 16",
    "layers((BUF, 4096, 0, -4096, 1, 0)), 1, 16",
    "layers((BUF, 4096, 0, -2 ** 63, 1, 0)), 1, 16",
    "layers((BUF, 1024, 0, 4096, 1, 0)), 1, 16",
    "layers((BUF, -4096, 0, 4096, 1, 0)), 1, 16",
    "layers((BUF, 8192, 100, 2048, 2, 0)), 1, 16",
    "layers((BUF, 4096, 0, 4096, 1, 1)), 1, 16",
    "layers((0, 4096, 0, 4096, 1, 0)), 1, 16",
    "layers((BUF, 4096, 0, 2048, 1, 0)), 1, 16",
    "layers((BUF, 4096, 0, 4096, 1, 0), (BUF, 4096, 0, 4096, 1, 0)), 2, 16",
    "layers((BUF, 2 ** 63 - 1, 0, 2 ** 62, 2, 0)), 1, 16",
]
# Former defects of the C# side (fixed: checked layout arithmetic): each runs alone in its own process.
# A registration case ending in "if then_copy() else None" is followed, when accepted, by a save
# and a load through the layers, as in use: that is where a wrong acceptance does its harm.
WILD = "; a layer whose extent leaves the address space was accepted"
KNOWN_DEFECTS = {
    "flexkv_register_kv_caches(fresh(), layers((BUF, 2 ** 62, 2 ** 62, 2 ** 62, 2, 0), (BUF, 2 ** 62, 2 ** 62, 2 ** 62, 2, 0), "
    "(BUF, 4096, 0, 4096, 1, 0)), 3, 8) if then_copy() else None":
        "spans whose sum wrapped to the block size crashed the first save",
    "flexkv_register_kv_caches(fresh(), layers((BUF, 2 ** 62, 0, 4096, 1, 0)), 1, 8) if then_copy() else None":
        "block_stride 2**62 over 8 blocks" + WILD,
    "flexkv_register_kv_caches(fresh(), layers((BUF, 8192, -2 ** 62, 2048, 2, 0)), 1, 16) if then_copy() else None":
        "kv_stride -2**62" + WILD,
    "flexkv_register_kv_caches(fresh(), layers((BUF, 2 ** 63 - 1, 0, 4096, 1, 0)), 1, 16) if then_copy() else None":
        "block_stride 2**63-1 over 16 blocks" + WILD,
}


def build_cases(seed: int = SEED) -> List[Dict]:
    """The seeded case list: every bad handle for every handle-taking export, then nulls,
    lengths, values, small buffers, invalid UTF-8, configurations and layer descriptors."""
    rng = random.Random(seed)
    calls: List[str] = []
    for template in ENGINE_CALLS:
        for h in ["0", str(rng.randrange(1, 2 ** 64)), "E + 1", "E - 1", "I", "DEAD"]:
            if h == "0" and "destroy" in template:
                continue  # destroy(0) is a documented no-op
            calls.append(template.format(h=h))
    for template in INDEX_CALLS:
        for h in ["0", str(rng.randrange(1, 2 ** 64)), "I + 1", "I - 1", "E", "DEAD_I"]:
            if h == "0" and "destroy" in template:
                continue
            calls.append(template.format(h=h))
    calls += NULLS
    for template in LENGTH_CALLS:
        for n in rng.sample(HUGE_LENGTHS, 2):
            calls.append(template.format(n=n))
    calls += VALUES + SMALL_BUFFERS
    for template in UTF8_CALLS:
        for raw in rng.sample(BAD_UTF8, 3):
            calls.append(template.format(id=repr(raw), n=len(raw)))
    calls += [f"flexkv_engine_create(cfg({c}), CFG_LEN, u64out())" for c in CONFIGS]
    calls += [f"flexkv_engine_create({raw!r}, {len(raw)}, u64out())" for raw in RAW_CONFIGS]
    calls += [f"flexkv_register_kv_caches(fresh(), {c})" for c in LAYERS]
    calls += [f"flexkv_register_rank_kv_caches(fresh(), 0, 1, ME, {c}, i32out())" for c in LAYERS[:6]]
    return [{"id": i, "call": c, "known": KNOWN_DEFECTS.get(c)} for i, c in enumerate(calls)] + \
        [{"id": len(calls) + i, "call": c, "known": why} for i, (c, why) in enumerate(KNOWN_DEFECTS.items())]


# ---- the child ----------------------------------------------------------------------------

class Env(dict):
    """The names a case expression may use."""

    def __init__(self) -> None:
        super().__init__()
        from flexkv import KVLayer, KVManager, PrefixIndex, _native

        lib = _native.lib()
        self.lib, self._native, self._KVManager = lib, _native, KVManager
        for name in _native.PROTOTYPES:
            self[name] = getattr(lib, name)
        self._buffer = (ctypes.c_uint8 * (1 << 20))()
        self["BUF"] = ctypes.addressof(self._buffer)
        self["ME"] = os.getpid()
        self._keep: list = []
        self._fresh: list = []
        # E: an engine with a host KV cache registered in this process, a cached prefix and a
        # request 'known' that matched it; DEAD: a destroyed engine; I: an index; DEAD_I: a
        # destroyed index (handles carry random low bits, so I - 1 and E + 1 are never live).
        self._engine = KVManager(self._config())
        self._engine.register_kv_caches([KVLayer(self["BUF"], 4096, 4096)], 16)
        toks = list(range(1000, 1033))
        assert self._engine.put("seed", toks, [0, 1, 2])
        assert self._engine.get_num_new_matched_tokens("known", toks, 0) == 32
        self["E"] = self._engine._handle
        dead = KVManager(self._config())
        self["DEAD"] = dead._handle
        dead.close()
        gone = PrefixIndex(16, 10)
        self["DEAD_I"] = gone._handle
        gone.close()
        self._index = PrefixIndex(16, 1024)
        self["I"] = self._index._handle
        self["TOKS"] = self.i64(33, *range(1000, 1033))
        self["BLOCKS"] = self.i32(3, 3, 4, 5)
        self["CFG_LEN"] = -1  # replaced by the length of the config just built
        for name in ("u8", "chars", "i32", "i64", "size", "i32out", "i64out", "u64out", "ipc", "kvev", "layers", "good_layers", "cfg",
                     "fresh", "then_copy", "pending"):
            self[name] = getattr(self, name)

    @staticmethod
    def _config(**kw) -> dict:
        base = {"num_cpu_blocks": 8, "block_bytes": 4096, "tokens_per_block": 16, "use_hugepage_cpu_buffer": False,
                "transfer_threads": 1}
        base.update(kw)
        return {k: v for k, v in base.items() if v is not None}

    def _hold(self, x):
        self._keep.append(x)
        return x

    def u8(self, n):
        return self._hold((ctypes.c_uint8 * n)())

    def chars(self, n):
        return self._hold(ctypes.create_string_buffer(n))

    def i32(self, n, *values):
        return self._hold((ctypes.c_int32 * n)(*values))

    def i64(self, n, *values):
        return self._hold((ctypes.c_int64 * n)(*values))

    def size(self):
        return ctypes.byref(self._hold(ctypes.c_size_t()))

    def i32out(self):
        return ctypes.byref(self._hold(ctypes.c_int32()))

    def i64out(self):
        return ctypes.byref(self._hold(ctypes.c_int64()))

    def u64out(self):
        return ctypes.byref(self._hold(ctypes.c_uint64()))

    def kvev(self, n):
        return self._hold((self._native.KvEvent * n)())

    def ipc(self, n):
        return self._hold((self._native.CudaIpc * n)())

    def layers(self, *specs):
        return self._hold((self._native.Layer * len(specs))(*[self._native.Layer(*s) for s in specs]))

    def good_layers(self, span=4096):
        return self.layers((self["BUF"], 4096, 0, span, 1, 0))

    def cfg(self, **kw):
        raw = json.dumps(self._config(**kw)).encode()
        self["CFG_LEN"] = len(raw)
        return self._hold(raw)

    def fresh(self):
        """A new engine with nothing registered (block_bytes 4096)."""
        m = self._KVManager(self._config())
        self._fresh.append(m)
        return m._handle

    def then_copy(self) -> bool:
        """Part of a case that registers layers: if the registration was accepted, a save and a
        load through them follow, as they would in use."""
        self._then_copy = True
        return True

    def pending(self, h):
        """A finished save not yet queried on engine ``h``, so that a query has something to report."""
        self._pending = getattr(self, "_pending", 0) + 1
        toks = list(range(5000 + 100 * self._pending, 5033 + 100 * self._pending))
        self._engine.request_finished(f"pending-{self._pending}", toks, [6, 7, 8], save=True)
        self._engine.launch_tasks()
        self._engine.wait(5.0)
        return h

    def run(self, call: str) -> Dict:
        self._then_copy = False
        self.lib.flexkv_abi_version(None)  # a known message first, so that a stale one is not taken for the case's
        sentinel = self._native.last_error()
        rc = eval(call, {"__builtins__": {}}, self)  # noqa: S307 - the calls are this file's own
        if self._then_copy and self._fresh and rc == 0:
            m = self._fresh[-1]
            m.put("copy", list(range(33)), [0, 1], timeout=10)
            m.get("copy-back", list(range(33)), [2, 3], timeout=10)
        msg = self._native.last_error()
        self._keep.clear()
        for m in self._fresh:
            m.close()
        self._fresh.clear()
        return {"rc": rc, "message": msg, "stale": msg == sentinel}


def child() -> None:
    cases = json.load(sys.stdin)
    env = Env()
    for case in cases:
        try:
            out = env.run(case["call"])
        except Exception as e:  # a Python-side failure of the case itself, not the library's answer
            out = {"rc": None, "message": f"{type(e).__name__}: {e}", "stale": False}
        out["id"] = case["id"]
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    child()
