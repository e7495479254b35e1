"""Polling for conditions that other threads or processes make true."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 30) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` seconds (checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
