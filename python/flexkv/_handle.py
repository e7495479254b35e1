"""Ownership of native handles: explicit close, context manager, finalizer and an atexit hook.

NativeAOT runs no managed exit handlers, so engines are shut down from Python: by ``close()``,
by ``with``, when garbage-collected, and at interpreter exit for whatever is still open.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Callable

from . import _native
from ._errors import ForkedProcessError, InvalidHandleError

_live: "weakref.WeakSet[Handle]" = weakref.WeakSet()
_live_lock = threading.Lock()


class Handle:
    """Base of objects owning one native handle, released by ``_destroy``."""

    _handle: int = 0
    _destroy: Callable[[int], int]

    def _adopt(self, handle: int, destroy: Callable[[int], int]) -> None:
        self._handle = handle
        self._destroy = destroy
        self._pid = os.getpid()
        with _live_lock:
            _live.add(self)

    @property
    def closed(self) -> bool:
        """Whether the handle was released."""
        return self._handle == 0

    def _h(self) -> int:
        if _native.forked():
            raise ForkedProcessError(
                "libflexkv was started in the parent process and cannot be used after fork(); "
                "create engines in processes started with multiprocessing's 'spawn' method")
        if self._handle == 0:
            raise InvalidHandleError(f"{type(self).__name__} is already closed")
        return self._handle

    def close(self) -> None:
        """Releases the native object; idempotent."""
        self._release()
        with _live_lock:
            _live.discard(self)

    def _release(self) -> None:
        h, self._handle = self._handle, 0
        if h and getattr(self, "_pid", None) == os.getpid():
            self._destroy(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        # Not close(): a collection can run on a thread holding _live_lock (_close_all), and an
        # object being collected leaves the weak set by itself.
        try:
            self._release()
        except Exception:
            pass


@atexit.register
def _close_all() -> None:
    with _live_lock:
        items = list(_live)
    for h in items:
        try:
            h.close()
        except Exception:
            pass
