"""Objects vLLM passes between processes and to its front end; they subclass vLLM's types, so
this module imports vLLM and is only imported by the connector inside vLLM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorMetadata


@dataclass
class FlexKVConnectorMetadata(KVConnectorMetadata):
    """Per-step metadata, pickled to workers in other processes. Transfers run on the scheduler
    side; the workers' one job per step is to hand vLLM ``load_errors`` (block ids whose load
    failed) in this step's output, and to say which step they ran (``step``), so the scheduler
    side can tell a lost output from a late one (see _load_errors.py)."""

    launched_tasks: int = 0
    step: int = 0
    load_errors: FrozenSet[int] = frozenset()


# Counters of things that went wrong (a load recomputed, a save or write lost, an I/O error),
# summed into the log line's flexkv_failures; the series themselves tell which.
FAILURE_COUNTERS = ("blocks_failed", "blocks_dropped", "ssd_checksum_failures", "ssd_write_errors",
                    "ssd_read_errors", "remote_reads_corrupt", "remote_reads_unavailable", "remote_writes_dropped")

try:
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorStats
except ImportError:  # vLLM < 0.11 has no connector stats
    KVConnectorStats = None

if KVConnectorStats is not None:

    @dataclass
    class FlexKVStats(KVConnectorStats):
        """One step's engine figures, from the scheduler side (``data["counters"]``: how much each
        counter grew, ``data["gauges"]``: levels that changed, ``data["elapsed_us"]``: time since the
        previous report), merged with what the workers return: only ``data["step"]``, never
        counters, so tensor-parallel workers are not counted once each. Workers return one every
        step (never empty), so that vLLM keeps calling ``update_connector_output`` in steps
        without a forward pass; without that, requests parked for a load would wait for
        unrelated traffic (vLLM's model-runner mixin drops an empty connector output in such
        steps). vLLM's front end adds the steps of a log interval up and logs
        ``reduce()``."""

        data: Dict[str, Any] = field(default_factory=dict)

        def reset(self) -> None:
            self.data = {}

        def aggregate(self, other: "KVConnectorStats") -> "KVConnectorStats":
            o = getattr(other, "data", None) or {}
            d = self.data
            if "step" in o:
                d["step"] = max(d.get("step", 0), o["step"])
            if o.get("counters"):
                mine = d.setdefault("counters", {})
                for k, v in o["counters"].items():
                    mine[k] = mine.get(k, 0) + v
            if o.get("gauges"):
                d.setdefault("gauges", {}).update(o["gauges"])
            if "elapsed_us" in o:
                d["elapsed_us"] = d.get("elapsed_us", 0) + o["elapsed_us"]
            return self

        def reduce(self) -> Dict[str, Any]:
            """The interval's figures for vLLM's "KV Transfer metrics" log line: hit ratio, how
            fast blocks moved each way (GB/s over the interval's wall time), failures."""
            c, g = self.data.get("counters", {}), self.data.get("gauges", {})
            queried, matched = c.get("queried_tokens", 0), c.get("matched_tokens", 0)
            secs = self.data.get("elapsed_us", 0) / 1e6
            bb = g.get("block_bytes", 0)

            def gbps(n_bytes: int) -> float:
                return round(n_bytes / secs / 1e9, 3) if secs > 0 else 0.0

            return {
                "flexkv_hit_ratio": round(matched / queried, 4) if queried else 0.0,
                "flexkv_matched_tokens": matched,
                "flexkv_blocks_loaded": c.get("blocks_loaded", 0),
                "flexkv_blocks_saved": c.get("blocks_saved", 0),
                "flexkv_load_gbps": gbps(c.get("blocks_loaded", 0) * bb),
                "flexkv_save_gbps": gbps(c.get("blocks_saved", 0) * bb),
                "flexkv_gbps": gbps(c.get("bytes_moved", 0)),
                "flexkv_blocks_failed": c.get("blocks_failed", 0),
                "flexkv_failures": sum(c.get(k, 0) for k in FAILURE_COUNTERS),
                "flexkv_cpu_blocks_used": g.get("cpu_blocks_used", 0),
            }

        def is_empty(self) -> bool:
            return False
else:
    FlexKVStats = None
