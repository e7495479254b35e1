"""Per-call cost of the connector's scheduler-side calls under a vLLM-like load.

The vLLM-playing harness of tests/python/connector (scheduler loop, block pool, worker) drives
the real ``FlexKVConnectorV1Impl`` with 256 waiting requests of 8K tokens, half of them sharing
one of four 4K-token prefixes that FlexKv already holds. Every call is timed: medians and p99 of
``get_num_new_matched_tokens`` (repeated asks only: the first sight of a prompt's tokens
includes converting and hashing them, reported separately), ``build_connector_meta`` and
``update_connector_output``.
"""

from __future__ import annotations

import argparse
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


class Timed:
    """Forwards to the connector and records how long each scheduler call took (µs)."""

    def __init__(self, impl) -> None:
        self._impl = impl
        self.seen: set = set()
        self.first_match, self.match, self.build, self.update = [], [], [], []

    def __getattr__(self, name):
        return getattr(self._impl, name)

    def get_num_new_matched_tokens(self, request, num_computed_tokens):
        t0 = time.perf_counter_ns()
        out = self._impl.get_num_new_matched_tokens(request, num_computed_tokens)
        dt = (time.perf_counter_ns() - t0) / 1e3
        (self.match if request.request_id in self.seen else self.first_match).append(dt)
        self.seen.add(request.request_id)
        return out

    def build_connector_meta(self, scheduler_output):
        t0 = time.perf_counter_ns()
        out = self._impl.build_connector_meta(scheduler_output)
        self.build.append((time.perf_counter_ns() - t0) / 1e3)
        return out

    def update_connector_output(self, connector_output):
        t0 = time.perf_counter_ns()
        self._impl.update_connector_output(connector_output)
        self.update.append((time.perf_counter_ns() - t0) / 1e3)


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
                 poison=False, check_reads=False)
    rng = random.Random(0)
    half = a.tokens // 2
    prefixes = [[rng.randrange(50_000) for _ in range(half)] for _ in range(4)]
    for pre in prefixes:  # FlexKv holds the shared prefixes before the measured run
        eng.add_request(pre + [1], max_tokens=1)
    eng.run(keep_alive=True)
    t = timed["t"]
    t.first_match.clear(), t.match.clear(), t.build.clear(), t.update.clear(), t.seen.clear()

    for i in range(a.requests):
        tail = [rng.randrange(50_000) for _ in range(a.tokens - (half if i % 2 == 0 else 0))]
        eng.add_request((prefixes[i % 4] + tail) if i % 2 == 0 else tail, max_tokens=2)
    t0 = time.perf_counter()
    steps = eng.run(keep_alive=True)
    wall = time.perf_counter() - t0
    st = eng.connector._impl.scheduler.manager.stats()
    eng.close()
    report({
        "requests": a.requests,
        "tokens_per_request": a.tokens,
        "steps": steps,
        "match_calls": len(t.match),
        "first_match_calls": len(t.first_match),
        "match_p50_us": round(statistics.median(t.match or [0]), 2),
        "match_p99_us": round(pct(t.match, 0.99), 2),
        "first_match_p50_us": round(statistics.median(t.first_match), 2),
        "build_meta_p50_us": round(statistics.median(t.build), 2),
        "build_meta_p99_us": round(pct(t.build, 0.99), 2),
        "update_output_p50_us": round(statistics.median(t.update), 2),
        "update_output_p99_us": round(pct(t.update, 0.99), 2),
        "matched_tokens": st["matched_tokens"],
        "wall_s": round(wall, 2),
    })


if __name__ == "__main__":
    main()
