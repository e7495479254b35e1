"""What ``flexkv plan`` reports per capacity combination, and its table."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .sweep import Outcome, TraceInfo


def duration_s(info: TraceInfo, request_rate: Optional[float]) -> Optional[float]:
    """The trace's span: from its timestamps (every request has one), else requests / --request-rate."""
    if info.timestamped == info.requests and info.requests > 1 and info.last_ms > info.first_ms:
        return (info.last_ms - info.first_ms) / 1000.0
    if request_rate:
        return info.requests / request_rate
    return None


def result(o: Outcome, tokens_per_block: int, block_bytes: Optional[int], span_s: Optional[float],
           prefill_tokens_per_s: Optional[float]) -> Dict[str, Any]:
    s, bs = o.stats, tokens_per_block
    prompt = max(s["prompt_tokens"], 1)
    loaded = s["cpu_hit_blocks"] + s["ssd_hit_blocks"]
    out: Dict[str, Any] = {
        "cpu": o.capacity.cpu_label, "ssd": o.capacity.ssd_label,
        "cpu_gb": o.capacity.cpu_gb, "ssd_gb": o.capacity.ssd_gb,
        "cpu_blocks": o.capacity.cpu_blocks, "ssd_blocks": o.capacity.ssd_blocks,
        "hit_ratio": {"cpu": s["cpu_hit_blocks"] * bs / prompt, "ssd": s["ssd_hit_blocks"] * bs / prompt,
                      "total": loaded * bs / prompt},
        "tokens_not_recomputed": loaded * bs,
        "blocks": {"loaded_from_cpu": s["cpu_hit_blocks"], "loaded_from_ssd": s["ssd_hit_blocks"],
                   "not_loaded": s["failed_load_blocks"], "cut_for_staging": s["staging_cut_blocks"],
                   "saved_to_cpu": s["saved_blocks"], "written_to_ssd": s["ssd_written_blocks"],
                   "dropped": s["dropped_blocks"], "cpu_evictions": s["cpu_evictions"],
                   "ssd_evictions": s["ssd_evictions"], "cpu_used": s["cpu_blocks_used"],
                   "ssd_used": s["ssd_blocks_used"]},
        "replay_s": round(o.replay_s, 4),
        "replay_tokens_per_s": round(s["prompt_tokens"] / o.replay_s) if o.replay_s > 0 else None,
    }
    if block_bytes and span_s:
        gbps = lambda blocks: blocks * block_bytes / span_s / 1e9  # noqa: E731
        out["bandwidth_gb_per_s"] = {
            "cpu_to_gpu": gbps(loaded),                   # every load ends with a CPU -> GPU copy
            "ssd_read": gbps(s["ssd_hit_blocks"]),        # SSD -> CPU staging
            "gpu_to_cpu": gbps(s["saved_blocks"]),        # saves
            "ssd_write": gbps(s["ssd_written_blocks"]),   # write-through
        }
    else:
        out["bandwidth_gb_per_s"] = None
    if prefill_tokens_per_s:
        out["gpu_seconds_saved"] = loaded * bs / prefill_tokens_per_s
    return out


def table(results: List[Dict[str, Any]]) -> str:
    bw = any(r["bandwidth_gb_per_s"] for r in results)
    gpu = any("gpu_seconds_saved" in r for r in results)
    head = ["CPU", "SSD", "hit CPU", "hit SSD", "hit total", "not recomputed"]
    if bw:
        head += ["load GB/s", "SSD rd GB/s", "SSD wr GB/s"]
    if gpu:
        head += ["GPU-s saved"]
    rows = []
    for r in results:
        h = r["hit_ratio"]
        row = [r["cpu"], r["ssd"],
               f"{h['cpu']:.1%}", f"{h['ssd']:.1%}", f"{h['total']:.1%}", f"{r['tokens_not_recomputed']:,}"]
        if bw:
            b = r["bandwidth_gb_per_s"] or {}
            row += [f"{b.get('cpu_to_gpu', 0):.2f}", f"{b.get('ssd_read', 0):.2f}", f"{b.get('ssd_write', 0):.2f}"]
        if gpu:
            row += [f"{r.get('gpu_seconds_saved', 0):,.0f}"]
        rows.append(row)
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
