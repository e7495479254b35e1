"""Logging for the connector: every distinct problem is logged once, never raised into vLLM."""

from __future__ import annotations

import logging
import threading
import time

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


class Throttle:
    """At most ``limit`` records per ``window_s`` (then one saying how many were left out): a
    client that floods the registration socket with garbage must not flood the log too."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._start, self._count, self._dropped = None, 0, 0

    def log(self, level: int, message: str, *args) -> None:
        now = time.monotonic()
        if self._start is None or now - self._start >= self.window_s:
            if self._dropped:
                logger.warning("FlexKv: %d more refusals like the above in the last %.0f s were not logged",
                               self._dropped, self.window_s)
            self._start, self._count, self._dropped = now, 0, 0
        if self._count >= self.limit:
            self._dropped += 1
            return
        self._count += 1
        logger.log(level, message, *args)
