"""Logging for the connector: every distinct problem is logged once, never raised into vLLM."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("flexkv.vllm")
_seen: set = set()
_lock = threading.Lock()


def once(kind: str, message: str, *args, level: int = logging.WARNING) -> None:
    """Logs ``message`` the first time ``kind`` occurs in this process."""
    with _lock:
        if kind in _seen:
            return
        _seen.add(kind)
    logger.log(level, "FlexKv: " + message, *args)
