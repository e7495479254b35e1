"""Integer arguments checked against the C type they are passed as.

ctypes keeps only the low bits of a Python int that does not fit an argument or a structure
field (2**32 + 16 passed as int32 arrives as 16), so every integer is range-checked before
the call. numpy and torch integer scalars are integers (``operator.index``); bools and
floats are not, though Python would treat True as 1 and ctypes would truncate 16.9.
"""

from __future__ import annotations

import operator
from typing import Any

from ._errors import InvalidArgumentError

INT32 = (-2 ** 31, 2 ** 31 - 1)
COUNT32 = (0, 2 ** 31 - 1)  # counts, ids and sizes passed as int32
INT64 = (-2 ** 63, 2 ** 63 - 1)
UINT64 = (0, 2 ** 64 - 1)


def integer(name: str, value: Any, bounds: tuple = COUNT32) -> int:
    """``value`` as an int if it is an integer within ``bounds``; else InvalidArgumentError naming ``name``."""
    lo, hi = bounds
    if not isinstance(value, bool) and not isinstance(value, float):
        try:
            v = operator.index(value)
        except TypeError:
            v = None
        if v is not None and lo <= v <= hi:
            return v
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:60] + "..."
    raise InvalidArgumentError(f"{name} must be an integer from {lo} to {hi}, got {shown}")
