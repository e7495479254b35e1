"""Helpers shared by the benchmark scripts: locating ../shared/bench and printing results."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO.parent / "shared" / "bench"
CACHE = REPO / "build" / "bench"


def shared_module(name: str):
    """Imports a script from ../shared/bench as a module."""
    path = SHARED_BENCH / f"{name}.py"
    if not path.is_file():
        sys.exit(f"{path} not found: the shared bench folder must sit beside the repository")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def trace(seed: int = 0, small: bool = False) -> list[dict]:
    """The shared trace (generated once into build/bench), as a list of requests."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"trace-{seed}{'-small' if small else ''}.jsonl"
    if not path.exists():
        args = [sys.executable, str(SHARED_BENCH / "make_trace.py"), "--seed", str(seed), "--out", str(path)]
        subprocess.run(args + (["--small"] if small else []), check=True)
    with open(path, encoding="ascii") as f:
        f.readline()
        return [json.loads(line) for line in f]


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
