"""The engines of this process that the exporter reads at scrape time.

Each KVManager attaches itself when it is created and detaches when it is closed; it is held by
a weak reference, so an engine the application forgot is still freed (its finalizer closes it).
The label is the engine's number in this process (0, 1, ... in creation order): several engines
share one endpoint, told apart by their ``engine`` label. Nothing of the engine's configuration
becomes a label, so no secret can reach a scrape.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Dict, List, Tuple

_lock = threading.Lock()
_live: Dict[int, "weakref.ref"] = {}
_numbers = itertools.count()


def attach(manager: Any) -> str:
    """Makes ``manager`` visible to the exporter; returns its ``engine`` label."""
    n = next(_numbers)
    with _lock:
        _live[n] = weakref.ref(manager)
    manager._metrics_number = n
    return str(n)


def detach(manager: Any) -> None:
    n = getattr(manager, "_metrics_number", None)
    if n is not None:
        with _lock:
            _live.pop(n, None)


def label(manager: Any) -> str:
    return str(getattr(manager, "_metrics_number", ""))


def live() -> List[Tuple[str, Any]]:
    """(label, manager) of every attached engine still open, oldest first."""
    with _lock:
        items = sorted(_live.items())
    out = []
    for n, ref in items:
        m = ref()
        if m is not None and not m.closed:
            out.append((str(n), m))
    return out
