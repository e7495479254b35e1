"""Per-call cost of the connector's scheduler-side calls under a vLLM-like load.

The vLLM-playing harness of tests/python/connector (scheduler loop, block pool, worker) drives
the real ``FlexKVConnectorV1Impl`` with 256 waiting requests of 8K tokens, half of them sharing
one of four 4K-token prefixes that FlexKv already holds. Every call is timed: medians and p99 of
``get_num_new_matched_tokens`` (repeated asks only: the first sight of a prompt's tokens
includes converting and hashing them, reported separately), ``update_state_after_alloc``,
``build_connector_meta``, ``update_connector_output``, ``request_finished`` and
``get_kv_connector_stats`` (which vLLM calls every step, because the workers' stats are never
empty). ``metrics_read_p50_us``: one read of the engine's metrics snapshot into a reused ctypes
buffer, as the per-step stats and a Prometheus scrape do it, timed once per step under the load
(target: 5 µs); ``native_call_floor_p50_us``: the cheapest call into the library
(``flexkv_abi_version``) timed at the same point, what any ctypes call costs there.
"""

from __future__ import annotations

import argparse
import ctypes
import random
import statistics
import sys
import time
from pathlib import Path

from _common import REPO, report

sys.path[:0] = [str(REPO / "tests" / "python" / "connector" / "stubs"), str(REPO / "tests" / "python")]

from connector.conftest import build_vllm_config  # noqa: E402
from connector.harness import Engine  # noqa: E402

from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl  # noqa: E402
from flexkv.manager import metrics_names  # noqa: E402


# The scheduler-side calls vLLM makes, timed one by one.
CALLS = ("get_num_new_matched_tokens", "update_state_after_alloc", "build_connector_meta", "update_connector_output",
         "request_finished", "get_kv_connector_stats")


class Timed:
    """Forwards to the connector and records how long each scheduler call took (µs), and once
    per step (at update_connector_output) how long a read of the metrics snapshot takes."""

    def __init__(self, impl) -> None:
        self._impl = impl
        self.seen: set = set()
        self.first_match: list = []
        self.times: dict = {name: [] for name in CALLS}
        self.metrics_read: list = []
        self.floor: list = []
        manager = impl.scheduler.manager
        self._metrics_buf = (ctypes.c_int64 * len(metrics_names()))()
        self._read_metrics = manager.read_metrics
        self._abi, self._version = manager._lib.flexkv_abi_version, ctypes.c_int32()
        for name in CALLS:
            setattr(self, name, self._timed(name))

    def __getattr__(self, name):
        return getattr(self._impl, name)

    def _timed(self, name):
        fn, times = getattr(self._impl, name), self.times[name]

        def call(*args):
            t0 = time.perf_counter_ns()
            out = fn(*args)
            dt = (time.perf_counter_ns() - t0) / 1e3
            if name == "get_num_new_matched_tokens":
                # The first sight of a prompt converts and hashes its tokens: reported apart.
                rid = args[0].request_id
                (times if rid in self.seen else self.first_match).append(dt)
                self.seen.add(rid)
            else:
                times.append(dt)
            if name == "update_connector_output":
                t1 = time.perf_counter_ns()
                self._read_metrics(self._metrics_buf)
                t2 = time.perf_counter_ns()
                self._abi(ctypes.byref(self._version))
                self.floor.append((time.perf_counter_ns() - t2) / 1e3)
                self.metrics_read.append((t2 - t1) / 1e3)
            return out

        return call

    def clear(self) -> None:
        self.first_match.clear()
        self.seen.clear()
        self.metrics_read.clear()
        self.floor.clear()
        for t in self.times.values():
            t.clear()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=256)
    p.add_argument("--tokens", type=int, default=8192)
    # Room for about 4 requests at once: the others wait, and vLLM asks about them again every
    # step until their blocks can be allocated (the repeated lookups measured here).
    p.add_argument("--gpu-blocks", type=int, default=2300)
    a = p.parse_args()

    cfg = build_vllm_config(num_layers=1, num_kv_heads=1, head_size=4, max_num_batched_tokens=65536,
                            max_num_seqs=256, extra_config={"num_cpu_blocks": 200_000, "use_hugepage_cpu_buffer": False})
    timed = {}

    def make(vllm_config, role, kcc):
        impl = FlexKVConnectorV1Impl(vllm_config, role)
        if impl.scheduler is not None:
            timed["t"] = Timed(impl)
            return timed["t"]
        return impl

    eng = Engine(cfg, num_gpu_blocks=a.gpu_blocks, layout="kv_first", make_connector=make,
                 poison=False, check_reads=False, write_kv=False)
    rng = random.Random(0)
    half = a.tokens // 2
    prefixes = [[rng.randrange(50_000) for _ in range(half)] for _ in range(4)]
    for pre in prefixes:  # FlexKv holds the shared prefixes before the measured run
        eng.add_request(pre + [1], max_tokens=1)
    eng.run(keep_alive=True)
    t = timed["t"]
    t.clear()

    for i in range(a.requests):
        tail = [rng.randrange(50_000) for _ in range(a.tokens - (half if i % 2 == 0 else 0))]
        eng.add_request((prefixes[i % 4] + tail) if i % 2 == 0 else tail, max_tokens=2)
    t0 = time.perf_counter()
    steps = eng.run(keep_alive=True)
    wall = time.perf_counter() - t0
    st = eng.connector._impl.scheduler.manager.stats()
    eng.close()
    short = {"get_num_new_matched_tokens": "match", "update_state_after_alloc": "alloc",
             "build_connector_meta": "build_meta", "update_connector_output": "update_output",
             "request_finished": "finished", "get_kv_connector_stats": "stats"}
    result = {"requests": a.requests, "tokens_per_request": a.tokens, "steps": steps,
              "first_match_calls": len(t.first_match),
              "first_match_p50_us": round(statistics.median(t.first_match or [0]), 2)}
    for name, key in short.items():
        xs = t.times[name]
        result[f"{key}_calls"] = len(xs)
        result[f"{key}_p50_us"] = round(statistics.median(xs or [0]), 2)
        result[f"{key}_p99_us"] = round(pct(xs, 0.99), 2)
    result.update(metrics_read_calls=len(t.metrics_read),
                  metrics_read_p50_us=round(statistics.median(t.metrics_read or [0]), 2),
                  metrics_read_p99_us=round(pct(t.metrics_read, 0.99), 2),
                  native_call_floor_p50_us=round(statistics.median(t.floor or [0]), 2))
    result.update(matched_tokens=st["matched_tokens"], wall_s=round(wall, 2))
    report(result)


if __name__ == "__main__":
    main()
