"""``vllm.envs``: read lazily from the environment, as vLLM's module does (only the variables a connector reads)."""

from __future__ import annotations

import os


def __getattr__(name: str):
    if name == "VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES":
        return os.environ.get(name, "1").strip().lower() in ("1", "true")
    raise AttributeError(name)
