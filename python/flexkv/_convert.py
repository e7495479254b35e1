"""Value converters for configuration keys. Each takes what a file, an env var or a dict gave
and returns the engine's type, or raises ValueError saying what was expected.

Booleans and numbers are kept apart on purpose: YAML reads ``cpu_cache_gb: true`` as a bool,
and Python would take it as 1; a number key refuses a bool, and a boolean key takes only real
booleans, 0/1 and the usual words ("true", "off", ...), never other numbers.
"""

from __future__ import annotations

import math
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise ValueError(f"expected true or false, got {v!r}")


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"expected a number, got {v!r}")
    try:
        f = float(v)
    except ValueError:
        raise ValueError(f"expected a number, got {v!r}") from None
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"expected a finite number, got {v!r}")
    return f


def _integer(v: Any) -> int:
    f = _number(v)
    if not f.is_integer():
        raise ValueError(f"expected an integer, got {v!r}")
    return int(f)


def positive_float(v: Any) -> float:
    f = _number(v)
    if not f > 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return f


def non_negative_float(v: Any) -> float:
    f = _number(v)
    if not f >= 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return f


def milliseconds(v: Any) -> float:
    """A duration in milliseconds, 0 to one minute (connector waits and intervals)."""
    f = _number(v)
    if not 0 <= f <= 60_000:
        raise ValueError(f"must be between 0 and 60000 ms, got {v!r}")
    return f


def fraction(v: Any) -> float:
    f = _number(v)
    if not 0 < f <= 1:
        raise ValueError(f"must be in (0, 1], got {v!r}")
    return f


def positive_int(v: Any) -> int:
    i = _integer(v)
    if i <= 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return i


def non_negative_int(v: Any) -> int:
    i = _integer(v)
    if i < 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return i


def port(v: Any) -> int:
    """A TCP port; 0 asks the system for a free one."""
    i = _integer(v)
    if not 0 <= i <= 65535:
        raise ValueError(f"must be a TCP port (0 to 65535), got {v!r}")
    return i


def string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {type(v).__name__}")
    return v


def path_list(v: Any) -> str:
    """FlexKV's ssd_cache_dir: one path, ';'-separated paths, or a list of paths -> 'a;b'."""
    if isinstance(v, (list, tuple)):
        if not v or not all(isinstance(p, str) and p.strip() for p in v):
            raise ValueError(f"must be a path or a non-empty list of paths, got {v!r}")
        return ";".join(p.strip() for p in v)
    return string(v)


# Element sizes as the engine knows them (EngineOptionsValidator.DtypeSize).
_DTYPE_BYTES = {
    "float16": 2, "fp16": 2, "half": 2, "bfloat16": 2, "bf16": 2,
    "float32": 4, "fp32": 4, "float": 4,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "e4m3": 1, "uint8": 1, "int8": 1, "fp8_ds_mla": 1,
}


def dtype_bytes(dtype: str):
    """Bytes per element of a KV dtype name (vLLM's fp8 variants are 1), or None if unknown."""
    d = str(dtype).lower().replace("torch.", "")
    return _DTYPE_BYTES.get(d, 1 if d.startswith("fp8") else None)
