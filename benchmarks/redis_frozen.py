"""A scheduler step's connector time while Redis is frozen (CLIENT PAUSE), against the same run
with Redis answering.

The vLLM-playing harness of tests/python/connector drives the real connector with a remote
tier whose store holds a shared prefix; every step 50 new requests with that prefix arrive.
Each scheduler-side connector call is timed and the calls of a step are added up: that sum is
what vLLM's step waits for. With Redis paused, a lookup must never wait for it: the question
goes out, the request is asked again next step (None), a late answer is a miss and the breaker
stops asking. Reported: p50/p99 of the step sum, frozen and live, and the lookups that were
late. The model writes no KV (its CPU work is not the connector's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _common import REPO, phase, report

sys.path[:0] = [str(REPO / "tests" / "python" / "connector" / "stubs"), str(REPO / "tests" / "python")]

from connector.conftest import build_vllm_config  # noqa: E402
from connector.harness import Engine, prompt  # noqa: E402
from redis_support import RedisServer  # noqa: E402

from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl  # noqa: E402

SCHEDULER_CALLS = ("get_num_new_matched_tokens", "update_state_after_alloc", "build_connector_meta",
                   "update_connector_output", "request_finished", "get_kv_connector_stats")


class StepTimer:
    """Wraps the scheduler connector; adds every call's duration to the current step (µs)."""

    def __init__(self, impl) -> None:
        self._impl, self.current = impl, 0.0
        for name in SCHEDULER_CALLS:
            setattr(self, name, self._timed(getattr(impl, name)))

    def __getattr__(self, name):
        return getattr(self._impl, name)

    def _timed(self, fn):
        def call(*args):
            t0 = time.perf_counter_ns()
            try:
                return fn(*args)
            finally:
                self.current += (time.perf_counter_ns() - t0) / 1e3

        return call


def run(url: str, steps: int, per_step: int, freeze: RedisServer | None) -> dict:
    cfg = build_vllm_config(num_layers=1, num_kv_heads=1, head_size=16, max_num_batched_tokens=1 << 16,
                            max_num_seqs=1024, extra_config={"num_cpu_blocks": 50_000, "remote_url": url,
                                                             "remote_lookup_budget_ms": 20, "remote_timeout_ms": 2000})
    holder = {}

    def make(vllm_config, role, kcc):
        impl = FlexKVConnectorV1Impl(vllm_config, role)
        if impl.scheduler is None:
            return impl
        holder["t"] = StepTimer(impl)
        return holder["t"]

    writer = Engine(cfg, num_gpu_blocks=4096, make_connector=lambda c, r, k: FlexKVConnectorV1Impl(c, r),
                    poison=False, check_reads=False, write_kv=False)
    shared = prompt(512, 1000)  # 32 blocks every request shares, saved to Redis by another engine
    writer.add_request(shared + [1], max_tokens=1)
    writer.run(keep_alive=True)
    deadline = time.time() + 30
    while writer.connector.scheduler.manager.stats()["remote_writes_pending"] and time.time() < deadline:
        time.sleep(0.01)
    writer.close()

    eng = Engine(cfg, num_gpu_blocks=1 << 15, make_connector=make, poison=False, check_reads=False, write_kv=False)
    t = holder["t"]
    if freeze is not None:
        freeze.cli("CLIENT", "PAUSE", "60000", "ALL")
    sums = []
    for s in range(steps):
        for i in range(per_step):
            eng.add_request(shared + prompt(16, 100_000 + 1000 * (s * per_step + i)), max_tokens=2)
        t.current = 0.0
        eng.step()
        sums.append(t.current)
    # (CLIENT UNPAUSE would wait for the pause too: the server is stopped instead.)
    st = eng.connector.scheduler.manager.stats()
    eng.close()
    sums_ms = sorted(x / 1000 for x in sums)
    return {"p50_ms": round(statistics.median(sums_ms), 3),
            "p99_ms": round(sums_ms[min(len(sums_ms) - 1, int(0.99 * len(sums_ms)))], 3),
            "max_ms": round(sums_ms[-1], 3), "lookups": st["remote_lookups"], "late": st["remote_lookups_late"],
            "breaker_open": st["remote_breaker_open"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--per-step", type=int, default=50)
    a = p.parse_args()
    phase(f"Redis answering: {a.steps} steps of {a.per_step} new requests")
    with RedisServer() as r:
        live = run(r.url, a.steps, a.per_step, None)
    phase(f"Redis frozen (CLIENT PAUSE): {a.steps} steps of {a.per_step} new requests")
    with RedisServer() as r:
        frozen = run(r.url, a.steps, a.per_step, r)
    report({"requests_per_step": a.per_step, "steps": a.steps,
            "frozen_step_p50_ms": frozen["p50_ms"], "frozen_step_p99_ms": frozen["p99_ms"],
            "frozen_step_max_ms": frozen["max_ms"], "frozen_lookups": frozen["lookups"],
            "frozen_lookups_late": frozen["late"], "frozen_breaker_open": frozen["breaker_open"],
            "live_step_p50_ms": live["p50_ms"], "live_step_p99_ms": live["p99_ms"], "live_lookups": live["lookups"]})


if __name__ == "__main__":
    main()
