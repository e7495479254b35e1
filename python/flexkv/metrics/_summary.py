"""A few lines saying what an engine did, from its snapshot: for the demo and quick checks."""

from __future__ import annotations

from typing import Any, List

from ._snapshot import by_key

_DIRECTIONS = (("loaded into the KV cache", "blocks_loaded"), ("saved from the KV cache", "blocks_saved"),
               ("read from SSD", "ssd_blocks_read"), ("written to SSD", "ssd_blocks_written"),
               ("read from the remote store", "remote_blocks_read"),
               ("written to the remote store", "remote_blocks_written"))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def summary_lines(manager: Any) -> List[str]:
    v = by_key(manager)
    queried, matched = v.get("queried_tokens", 0), v.get("matched_tokens", 0)
    bb = v.get("block_bytes", 0)
    lines = [f"hit ratio       {matched / queried if queried else 0.0:.1%}  ({matched} of {queried} queried tokens "
             "offered by FlexKv)"]
    moved = [f"{what} {_size(v[k] * bb)}" for what, k in _DIRECTIONS if v.get(k)]
    lines.append("bytes           " + ("; ".join(moved) if moved else "none moved"))
    ev = f"evictions       CPU {v.get('evictions', 0)}"
    if v.get("ssd_blocks_total"):
        ev += f", SSD {v.get('ssd_evictions', 0)}"
    failed = v.get("blocks_failed", 0) + v.get("blocks_dropped", 0)
    lines.append(ev + (f"; {v.get('blocks_failed', 0)} loads failed, {v.get('blocks_dropped', 0)} saves dropped"
                       if failed else "; no failed loads or dropped saves"))
    return lines
