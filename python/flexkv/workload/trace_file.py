"""Traces as JSON lines: a header line, then one line per request in replay order.

Header: ``{"trace_version": 1, "generator": "flexkv.workload.chat", "params": {...}}`` with
every parameter that produced the trace. Request lines:
``{"id": "c12-t3", "conv": 12, "turn": 3, "prompt": [...], "output": [...]}``. The text is
compact ASCII, so the same trace always gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

from .chat import ChatParams, generate

TRACE_VERSION = 1
GENERATOR = "flexkv.workload.chat"
PathLike = Union[str, "os.PathLike[str]"]


def header(params: ChatParams) -> dict:
    return {"trace_version": TRACE_VERSION, "generator": GENERATOR, "params": params.as_dict()}


def write(path: PathLike, params: ChatParams, requests: Optional[Iterable[dict]] = None) -> int:
    """Writes the trace of ``params`` (or the given requests) to ``path``; returns the request count.

    The file is written beside its final name and renamed, so a reader never sees half a trace."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps(header(params), separators=(",", ":")) + "\n")
        for r in generate(params) if requests is None else requests:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def read(path: PathLike) -> Tuple[dict, List[dict]]:
    """The header and the requests of a trace file."""
    with open(path, encoding="ascii") as f:
        head = json.loads(f.readline())
        if head.get("trace_version") != TRACE_VERSION:
            raise ValueError(f"{path}: trace_version {head.get('trace_version')!r}, expected {TRACE_VERSION}")
        return head, [json.loads(line) for line in f]


def cached(path: PathLike, params: ChatParams) -> List[dict]:
    """The requests of ``params``, read from ``path`` when it holds exactly that trace, else
    generated and written there first."""
    path = Path(path)
    try:
        head, requests = read(path)
        if head == header(params):
            return requests
    except (OSError, ValueError):
        pass  # absent, unreadable or another version: generate it again
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, params)
    return read(path)[1]
