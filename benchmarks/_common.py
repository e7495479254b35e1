"""Helpers shared by the benchmark scripts: the chat trace, the phase log and the results."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from flexkv import workload

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "build" / "bench"


def trace(seed: int = 0, small: bool = False) -> list[dict]:
    """The chat trace of flexkv.workload (default or small preset), kept in build/bench once made."""
    params = workload.small(seed) if small else workload.ChatParams(seed=seed)
    return workload.cached(CACHE / f"chat-{seed}{'-small' if small else ''}.jsonl", params)


def reference_matched(requests: list[dict], capacity: int | None = None) -> int:
    """Matched tokens of the reference replay (16-token blocks; capacity in blocks, None: unlimited)."""
    return workload.replay(requests, 16, capacity).matched_tokens


def phase(text: str) -> None:
    """One progress line on stderr, so a long benchmark is never silent (stdout keeps the results)."""
    print(f"-- {text}", file=sys.stderr, flush=True)


def report(result: dict) -> None:
    """Prints the figures readably, then the final JSON line."""
    for k, v in result.items():
        print(f"{k:>34}: {v}")
    print(json.dumps(result), flush=True)


def wait_all(m, ids: set, kind: str, timeout: float = 120.0) -> float:
    """Waits until every id is reported as finished sending/receiving (a failed block aborts); returns the time then."""
    t0 = time.perf_counter()
    left = set(ids)
    while left:
        got = m.query_finished()
        assert not got.failed_blocks, got.failed_blocks
        left -= got.sending if kind == "sending" else got.recving
        if left:
            m.wait(0.01)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{len(left)} transfers did not finish")
    return time.perf_counter()
