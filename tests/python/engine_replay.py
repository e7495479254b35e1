"""Drives the real engine (flexkv.KVManager) over a trace the way the planner models it: one
request at a time, vLLM-style calls (match the prompt, load, finish with a save of prompt and
output), every transfer and every SSD write finished before the next request. Returns the
blocks each request loaded from CPU and from SSD and the matched blocks that failed to load,
read from the engine's own counters."""

from __future__ import annotations

import ctypes
import time
from typing import Dict, List, Optional, Sequence, Tuple

import flexkv

BLOCK_BYTES = 64    # tiny blocks: the contents do not matter, only where the engine finds them
DEVICE_BLOCKS = 8   # the registered "GPU" cache: block ids are reused modulo its size
SSD_SLOT = 4096     # the engine's SSD slot size for blocks up to 4 KiB


def _settle(m: flexkv.KVManager, timeout: float = 30.0) -> Dict:
    """Waits until no SSD write is pending (the planner applies them before the next request)."""
    deadline = time.monotonic() + timeout
    while True:
        s = m.stats()
        if s["ssd_writes_pending"] == 0 and s["tasks_in_flight"] == 0:
            return s
        if time.monotonic() > deadline:
            raise TimeoutError("SSD writes did not finish")
        time.sleep(0.0005)


def replay(requests: Sequence[Tuple[Sequence[int], Sequence[int]]], tokens_per_block: int, cpu_blocks: int,
           ssd_blocks: int = 0, ssd_dir: Optional[str] = None) -> List[Tuple[int, int, int]]:
    """(cpu, ssd, failed) blocks per request of (prompt, output) pairs."""
    config = {"num_cpu_blocks": cpu_blocks, "block_bytes": BLOCK_BYTES, "tokens_per_block": tokens_per_block,
              "use_hugepage_cpu_buffer": False, "transfer_threads": 1}
    if ssd_blocks:
        config.update(ssd_cache_gb=ssd_blocks * SSD_SLOT / (1 << 30), ssd_cache_dir=ssd_dir, ssd_persist=False)
    host = (ctypes.c_uint8 * (BLOCK_BYTES * DEVICE_BLOCKS))()
    out = []
    with flexkv.KVManager(config) as m:
        m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(host), BLOCK_BYTES, BLOCK_BYTES)], DEVICE_BLOCKS)
        before = _settle(m)
        for i, (prompt, output) in enumerate(requests):
            rid = f"r{i}"
            tokens = list(prompt) + list(output)
            ids = [b % DEVICE_BLOCKS for b in range(len(tokens) // tokens_per_block + 1)]
            n = m.match(rid, list(prompt), 0)
            m.update_state_after_alloc(rid, ids, n)
            if n:
                m.launch_tasks()
                m.wait_finished(rid, "recving")
            if m.request_finished(rid, tokens, ids, save=True):
                m.launch_tasks()
                m.wait_finished(rid, "sending")
            after = _settle(m)
            ssd = after["ssd_blocks_read"] - before["ssd_blocks_read"]
            loaded = after["blocks_loaded"] - before["blocks_loaded"]
            out.append((loaded - ssd, ssd, after["blocks_failed"] - before["blocks_failed"]))
            before = after
    return out
