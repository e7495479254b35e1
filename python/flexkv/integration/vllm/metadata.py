"""Objects vLLM passes between processes and to its front end; they subclass vLLM's types, so
this module imports vLLM and is only imported by the connector inside vLLM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorMetadata


@dataclass
class FlexKVConnectorMetadata(KVConnectorMetadata):
    """Per-step metadata. Transfers run on the scheduler side, so it carries nothing the
    workers must act on; kept as a type of our own so vLLM can pickle it to workers."""

    launched_tasks: int = 0


try:
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorStats
except ImportError:  # vLLM < 0.11 has no connector stats
    KVConnectorStats = None

if KVConnectorStats is not None:

    @dataclass
    class FlexKVStats(KVConnectorStats):
        """Engine counters. Workers return an instance every step (never empty) so that vLLM
        keeps calling ``update_connector_output`` in steps without a forward pass; without
        that, requests parked for a load would wait for unrelated traffic (vLLM's model-runner mixin
        drops an empty connector output in such steps)."""

        data: Dict[str, Any] = field(default_factory=dict)

        def reset(self) -> None:
            self.data = {}

        def aggregate(self, other: "KVConnectorStats") -> "KVConnectorStats":
            for k, v in getattr(other, "data", {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.data[k] = max(self.data.get(k, 0), v)  # every worker sees the same engine
                else:
                    self.data.setdefault(k, v)
            return self

        def reduce(self) -> Dict[str, Any]:
            d = self.data
            queried = d.get("queried_tokens", 0)
            return {
                "flexkv_matched_tokens": d.get("matched_tokens", 0),
                "flexkv_hit_ratio": round(d.get("matched_tokens", 0) / queried, 4) if queried else 0.0,
                "flexkv_blocks_loaded": d.get("blocks_loaded", 0),
                "flexkv_blocks_saved": d.get("blocks_saved", 0),
                "flexkv_blocks_failed": d.get("blocks_failed", 0),
                "flexkv_cpu_blocks_used": d.get("cpu_blocks_used", 0),
            }

        def is_empty(self) -> bool:
            return False
else:
    FlexKVStats = None
