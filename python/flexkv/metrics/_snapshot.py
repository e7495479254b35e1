"""One engine's metrics snapshot, read into Python values."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List


def read(manager: Any, size: int) -> List[int]:
    """The snapshot's first ``size`` values (metrics_names() order). A fresh buffer each call:
    scrapes may run on several threads at once, and they are rare enough not to reuse one."""
    buf = (ctypes.c_int64 * size)()
    manager.read_metrics(buf)
    return list(buf)


def by_key(manager: Any) -> Dict[str, int]:
    """The snapshot keyed as in the per-step stats (``name`` or ``name{k=v}``)."""
    from ..manager import metrics_names
    from ._series import key_of

    names = metrics_names()
    values = read(manager, len(names))
    return {key_of(m["name"], m.get("labels")): v for m, v in zip(names, values)}
