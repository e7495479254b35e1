"""A stand-in for a vLLM CPU worker in another process: it owns a KV cache tensor shard and
answers comparison requests, so the engine's process can check bytes it never maps itself."""

from __future__ import annotations

import os


def serve(conn, num_blocks: int, span_bytes: int, seed: int, huge_pages: bool = False) -> None:
    """``huge_pages``: what FlexKv's worker connector does to a vLLM CPU worker's cache (here
    waited for, so timings see its effect; vLLM runs it in the background)."""
    import torch

    t = torch.zeros(num_blocks, 2, span_bytes // 2, dtype=torch.int16)  # (N, 2, span) blocks first
    g = torch.Generator().manual_seed(seed)
    half = num_blocks // 2
    t[:half] = torch.randint(-30000, 30000, t[:half].shape, generator=g, dtype=torch.int16)
    if huge_pages:
        from flexkv._hugepages import back_with_huge_pages

        worker = back_with_huge_pages([(t.data_ptr(), t.numel() * t.element_size())])
        if worker is not None:
            worker.join()
    conn.send({"pid": os.getpid(), "base": t.data_ptr(), "block_stride": t.stride(0) * 2,
               "kv_stride": t.stride(1) * 2, "span": span_bytes})
    while True:
        cmd = conn.recv()
        if cmd[0] == "same":
            conn.send(all(bool(torch.equal(t[a], t[b])) for a, b in cmd[1]))
        elif cmd[0] == "zero":
            t[cmd[1]:cmd[2]] = 0
            conn.send(True)
        else:
            return
