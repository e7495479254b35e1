"""``vllm.distributed.kv_transfer``: the process-wide worker connector (``get_kv_transfer_group``).
In vLLM each worker process holds one; the harness runs several workers in one process and
points the global at worker ``r``'s connector while it calls into that worker (FakeWorker.as_rank)."""

from __future__ import annotations

from typing import Any, Optional

_KV_CONNECTOR_AGENT: Optional[Any] = None


def get_kv_transfer_group() -> Any:
    assert _KV_CONNECTOR_AGENT is not None, "disaggregated KV cache transfer parallel group is not initialized"
    return _KV_CONNECTOR_AGENT


def has_kv_transfer_group() -> bool:
    return _KV_CONNECTOR_AGENT is not None


def set_kv_transfer_group(connector: Optional[Any]) -> Optional[Any]:
    """Stub-only: make ``connector`` this process's worker connector; returns the previous one."""
    global _KV_CONNECTOR_AGENT
    prev, _KV_CONNECTOR_AGENT = _KV_CONNECTOR_AGENT, connector
    return prev
