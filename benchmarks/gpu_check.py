"""GPU check of the CUDA copy path: needs only the built library, the flexkv package and PyTorch
with CUDA (no .NET, no vLLM).

Registers CUDA KV caches in each supported layout - FlashAttention 5-D with the K/V axis first
and second, packed 4-D and MLA 3-D - saves blocks to the CPU tier and loads them into other
blocks, verifies every byte, and measures device->host and host->device GB/s against PyTorch's
own copy of the same bytes to and from pinned memory in the same run. Then the multi-process
path: a spawned worker process holds the cache and sends CUDA IPC handles, as a vLLM worker
with tensor parallelism does; the worker checks the loaded bytes. Last line: one JSON object.

    ./build.sh gpu-check [--gib 1]     (.venv's python: the built package, the system's PyTorch)
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import wait_all

BS, H, D = 16, 8, 128


def layouts(num_blocks: int, torch):
    return {
        "kv_first": (2, num_blocks, BS, H, D),
        "blocks_first": (num_blocks, 2, BS, H, D),
        "packed": (num_blocks, H, BS, 2 * D),
        "mla": (num_blocks, BS, 576),
    }


def torch_copy_gbps(torch, nbytes: int) -> tuple[float, float]:
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    best_d2h = best_h2d = 0.0
    for _ in range(3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        host.copy_(dev, non_blocking=True)
        torch.cuda.synchronize()
        best_d2h = max(best_d2h, nbytes / (time.perf_counter() - t0) / 1e9)
        t0 = time.perf_counter()
        dev.copy_(host, non_blocking=True)
        torch.cuda.synchronize()
        best_h2d = max(best_h2d, nbytes / (time.perf_counter() - t0) / 1e9)
    return best_d2h, best_h2d


def run_layout(flexkv, describe, torch, name, shape, num_layers, blocks, batch_copy: bool = True):
    caches = [torch.randn(shape, device="cuda").to(torch.float16) for _ in range(num_layers)]
    described = [describe(t, BS, shape[1] if name == "kv_first" else shape[0]) for t in caches]
    layers = [d[0] for d in described]
    nb = described[0][1]
    block_bytes = sum(l.span_bytes * l.num_kv for l in layers)
    per_req = 64
    reqs = max(1, blocks // per_req)
    m = flexkv.KVManager({"num_cpu_blocks": reqs * per_req, "block_bytes": block_bytes, "tokens_per_block": BS,
                          "transfer_threads": 2, "cuda_batch_copy": batch_copy})
    m.register_kv_caches(layers, nb, cuda_device=torch.cuda.current_device())
    src = [list(range(r * per_req, (r + 1) * per_req)) for r in range(reqs)]
    toks = [list(range(r * 10**6, r * 10**6 + per_req * BS + 1)) for r in range(reqs)]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for r in range(reqs):
        assert m.request_finished(f"p{r}", toks[r], src[r])
    m.launch_tasks()
    wait_all(m, {f"p{r}" for r in range(reqs)}, "sending")
    d2h = reqs * per_req * block_bytes / (time.perf_counter() - t0) / 1e9
    off = reqs * per_req
    for r in range(reqs):
        assert m.get_num_new_matched_tokens(f"g{r}", toks[r], 0) == per_req * BS
        m.update_state_after_alloc(f"g{r}", [off + b for b in src[r]], per_req * BS)
    t0 = time.perf_counter()
    m.launch_tasks()
    wait_all(m, {f"g{r}" for r in range(reqs)}, "recving")
    h2d = reqs * per_req * block_bytes / (time.perf_counter() - t0) / 1e9
    m.close()
    verified = 0
    for t in caches:
        if name == "kv_first":
            a, b = t[:, :off], t[:, off:2 * off]
        else:
            a, b = t[:off], t[off:2 * off]
        if not torch.equal(a.view(torch.int16), b.view(torch.int16)):
            raise SystemExit(f"{name}: loaded bytes differ from the saved ones")
        verified += b.numel() * b.element_size()
    return d2h, h2d, verified, reqs * per_req * block_bytes


def ipc_child(conn, layers: int, blocks: int) -> None:
    """A stand-in for a vLLM worker: owns a CUDA cache, exports it, then checks loaded blocks."""
    import torch

    from flexkv import cuda_ipc
    from flexkv.integration.vllm._layouts import describe

    caches = [torch.randn((2, 2 * blocks, BS, H, D), device="cuda").to(torch.float16) for _ in range(layers)]
    described = [describe(t, BS, 2 * blocks)[0] for t in caches]
    handles = [cuda_ipc.export(l.base) for l in described]
    torch.cuda.synchronize()
    conn.send((described, 2 * blocks, handles))
    conn.recv()  # the engine saved blocks 0..blocks-1 and loaded them into blocks..2*blocks-1
    torch.cuda.synchronize()
    conn.send(all(torch.equal(t[:, :blocks].view(torch.int16), t[:, blocks:].view(torch.int16)) for t in caches))


def run_ipc(flexkv, torch, layers: int, blocks: int) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=ipc_child, args=(child, layers, blocks), daemon=True)
    proc.start()
    try:
        if not parent.poll(120):
            return {"ipc_error": "the worker process did not answer"}
        described, nb, handles = parent.recv()
        block_bytes = sum(l.span_bytes * l.num_kv for l in described)
        m = flexkv.KVManager({"num_cpu_blocks": blocks, "block_bytes": block_bytes, "tokens_per_block": BS,
                              "transfer_threads": 2})
        try:
            assert m.register_rank(0, 1, proc.pid, described, nb, cuda_ipc=handles)
            toks = list(range(blocks * BS + 1))
            t0 = time.perf_counter()
            assert m.put("ipc", toks, list(range(blocks)))
            d2h = blocks * block_bytes / (time.perf_counter() - t0) / 1e9
            t0 = time.perf_counter()
            failed = m.get("ipc-g", toks, list(range(blocks, 2 * blocks)))
            h2d = blocks * block_bytes / (time.perf_counter() - t0) / 1e9
        finally:
            m.close()
        if failed:
            return {"ipc_error": f"{len(failed)} blocks failed to load"}
        parent.send("check")
        if parent.recv() is not True:
            return {"ipc_error": "bytes loaded into the worker differ from those saved from it"}
        return {"ipc_d2h_gbps": round(d2h, 2), "ipc_h2d_gbps": round(h2d, 2), "ipc_bytes_verified": blocks * block_bytes}
    except Exception as e:  # reported in the JSON: the single-process figures stand on their own
        return {"ipc_error": f"{type(e).__name__}: {e}"}
    finally:
        proc.kill()
        proc.join(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="bytes moved each way per layout")
    p.add_argument("--layers", type=int, default=8)
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("gpu_check needs PyTorch")
    if not torch.cuda.is_available():
        sys.exit("gpu_check needs a CUDA GPU (torch.cuda.is_available() is False)")
    import flexkv
    from flexkv.integration.vllm._layouts import describe

    results, verified, moved = {}, 0, 0
    for name in ("kv_first", "blocks_first", "packed", "mla"):
        probe = layouts(1, torch)[name]
        per_block = a.layers * int(torch.tensor(probe).prod()) * 2  # fp16 bytes of one block, all layers
        blocks = max(64, int(a.gib * (1 << 30)) // per_block // 64 * 64)
        shape = layouts(2 * blocks, torch)[name]
        d2h, h2d, v, mv = run_layout(flexkv, describe, torch, name, shape, a.layers, blocks)
        results[name] = {"d2h_gbps": round(d2h, 2), "h2d_gbps": round(h2d, 2)}
        verified += v
        moved = max(moved, mv)
        print(name, results[name], flush=True)
    # The same layout with one driver copy per span instead of the batched copy, for comparison.
    probe = layouts(1, torch)["kv_first"]
    blocks = max(64, int(a.gib * (1 << 30)) // (a.layers * int(torch.tensor(probe).prod()) * 2) // 64 * 64)
    d2h, h2d, v, _ = run_layout(flexkv, describe, torch, "kv_first", layouts(2 * blocks, torch)["kv_first"], a.layers,
                                blocks, batch_copy=False)
    per_span = {"per_span_d2h_gbps": round(d2h, 2), "per_span_h2d_gbps": round(h2d, 2)}
    verified += v
    print("kv_first, one copy per span", per_span, flush=True)
    ipc = run_ipc(flexkv, torch, a.layers, 1024)
    print("ipc", ipc, flush=True)
    t_d2h, t_h2d = torch_copy_gbps(torch, moved)
    d2h = min(r["d2h_gbps"] for r in results.values())
    h2d = min(r["h2d_gbps"] for r in results.values())
    print(json.dumps({
        "d2h_gbps": d2h, "h2d_gbps": h2d, "torch_d2h_gbps": round(t_d2h, 2), "torch_h2d_gbps": round(t_h2d, 2),
        "d2h_ratio": round(d2h / t_d2h, 3), "h2d_ratio": round(h2d / t_h2d, 3), "bytes_verified": verified,
        "device": torch.cuda.get_device_name(), "per_layout": results, **per_span, **ipc,
    }))


if __name__ == "__main__":
    main()
