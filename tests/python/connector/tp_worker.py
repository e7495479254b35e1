"""A vLLM worker of rank r in its own (spawned) process, with FlexKv's worker connector: it
registers its KV cache shard (which returns at once: the scheduler may not exist yet), then
answers commands from the test: the registration's outcome, byte comparisons, exit."""

from __future__ import annotations

import sys
from pathlib import Path


def run(conn, rank: int, socket_path: str, num_blocks: int, heads: int = 1, tp: int = 2) -> None:
    """``tp=1``: the only worker of vLLM's multiprocess executor (``--distributed-executor-backend mp``)."""
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here / "stubs"), str(here.parent)]  # flexkv itself: the installed package
    import torch
    from vllm.distributed import parallel_state

    from connector.conftest import build_vllm_config
    from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

    parallel_state.set_rank(rank, tp)
    cfg = build_vllm_config(tp=tp, executor_backend="mp", extra_config={"registration_socket": socket_path})
    caches = {f"model.layers.{i}.self_attn.attn": torch.zeros(2, num_blocks, 16, heads * (3 - tp), 8,
                                                              dtype=torch.float16)
              for i in range(2)}  # TP=2: one of the two KV heads, this rank's shard
    g = torch.Generator().manual_seed(rank + 1)
    for t in caches.values():
        t[:, : num_blocks // 2] = torch.randint(-100, 100, t[:, : num_blocks // 2].shape, generator=g).to(torch.float16)
    worker = FlexKVConnectorV1Impl(cfg, 1)
    worker.register_kv_caches(caches)
    conn.send("returned")
    while True:
        cmd = conn.recv()
        if cmd[0] == "status":
            try:
                worker.worker.registration.wait(cmd[1])
                conn.send("registered")
            except Exception as e:
                conn.send(f"refused: {e}")
        elif cmd[0] == "same":
            conn.send(all(torch.equal(t[:, a], t[:, b]) for t in caches.values() for a, b in cmd[1]))
        else:
            worker.shutdown()
            return
