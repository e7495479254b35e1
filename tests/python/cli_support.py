"""Runs the ``flexkv`` command as a user would (``python -m flexkv`` in a child process, this
checkout's package first on the path), and writes small traces in the formats it reads."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from conftest import REPO

TIMEOUT_S = 300


def flexkv(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    # The machine's own FlexKv settings must not leak into a test: only what the test passes.
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLEXKV_") and k != "ENABLE_FLEXKV"}
    full.update(env or {})
    paths = [str(REPO / "python"), (env or {}).get("PYTHONPATH"), os.environ.get("PYTHONPATH")]
    full["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return subprocess.run([sys.executable, "-m", "flexkv", *map(str, args)], capture_output=True, text=True,
                          env=full, timeout=timeout)


def flexkv_json(*args: str, env: Optional[Dict[str, str]] = None, expect: int = 0) -> dict:
    out = flexkv(*args, "--json", env=env)
    assert out.returncode == expect, out.stdout + out.stderr
    return json.loads(out.stdout)


def write_tokens_trace(path: Path, requests: Sequence[Tuple[Sequence[int], Sequence[int]]],
                       timestamps_ms: Optional[Sequence[float]] = None) -> Path:
    """A ``tokens`` trace: a header line as flexkv.workload writes it, then prompt/output lines."""
    with open(path, "w", encoding="ascii") as f:
        f.write(json.dumps({"trace_version": 1, "generator": "test"}) + "\n")
        for i, (p, o) in enumerate(requests):
            line = {"prompt": list(p), "output": list(o)}
            if timestamps_ms is not None:
                line["timestamp"] = timestamps_ms[i]
            f.write(json.dumps(line) + "\n")
    return path


def mooncake_requests(seed: int, conversations: int = 12, turns: int = 5, shared: int = 3) -> List[dict]:
    """A Mooncake-format trace: conversations over a few shared system prompts (hash id runs), each
    turn extending the previous turn's hash ids; the last hash block is cut by input_length."""
    rng = random.Random(seed)
    next_id = 0

    def fresh(n: int) -> List[int]:
        nonlocal next_id
        next_id += n
        return list(range(next_id - n, next_id))

    systems = [fresh(rng.randint(1, 3)) for _ in range(shared)]
    context = [list(rng.choice(systems)) for _ in range(conversations)]
    out, clock = [], 0
    for _ in range(turns):
        for c in rng.sample(range(conversations), conversations):
            context[c] = context[c] + fresh(rng.randint(1, 3))
            ids = context[c]
            length = (len(ids) - 1) * 512 + rng.randint(1, 512)
            clock += rng.randint(0, 2000)
            out.append({"timestamp": clock, "input_length": length, "output_length": rng.randint(0, 300),
                        "hash_ids": list(ids)})
    return out


def write_mooncake_trace(path: Path, requests: List[dict]) -> Path:
    with open(path, "w", encoding="ascii") as f:
        for r in requests:
            f.write(json.dumps(r) + "\n")
    return path
