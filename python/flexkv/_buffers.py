"""Zero-copy (where possible) views of token ids and block ids as C arrays, checked first.

Accepts Python sequences, ``array.array``, numpy arrays and torch tensors without importing
numpy or torch: their types are recognised by module name. Token ids are int64 and block ids
int32 >= 0 in the C ABI; narrowing a value that does not fit would wrap it silently (block id
2**32 + 3 would become 3 and a load would write into device block 3; uint64 2**64 - 1 would
become token -1), so any integer dtype is taken only when its values fit, floats (which would
be truncated), bools and other dtypes are refused, and the error names the argument, the
position and the value. The common cases stay cheap: an int64 token array is passed as it is,
without a scan; other dtypes cost one vectorised min/max; Python lists are checked by the
conversion itself.
"""

from __future__ import annotations

from array import array
from typing import Any, Sequence, Tuple

from ._args import COUNT32, INT64
from ._errors import InvalidArgumentError

_CODES = {8: "q", 4: "i"}
_BOUNDS = {8: INT64, 4: COUNT32}  # token ids: any int64; block ids: int32 >= 0


def as_c_array(values: Any, itemsize: int, name: str = "token_ids") -> Tuple[Any, int, int]:
    """Returns ``(keepalive, address, length)`` of ``values`` as a C array of signed ints.

    ``itemsize`` is 8 (int64 token ids) or 4 (int32 block ids, >= 0); ``name`` is the argument
    named in errors. The caller keeps ``keepalive`` referenced for as long as the address is used.
    """
    code, bounds = _CODES[itemsize], _BOUNDS[itemsize]
    module = type(values).__module__
    if module.startswith("numpy"):
        return _numpy(values, itemsize, name, bounds)
    if module.startswith("torch"):
        return _torch(values, itemsize, name, bounds)
    if isinstance(values, array) and values.typecode == code:
        arr = values
    else:
        try:
            arr = array(code, values if isinstance(values, (list, tuple, range)) else list(values))
        except (TypeError, OverflowError):
            raise _first_bad(list(values), name, bounds) from None
    if bounds[0] == 0 and arr and min(arr) < 0:
        raise _first_bad(arr, name, bounds)
    addr, n = arr.buffer_info()
    return arr, addr if n else 0, n


def _numpy(values: Any, itemsize: int, name: str, bounds: tuple):
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{name} must hold integers, got dtype {arr.dtype}")
    info = np.iinfo(arr.dtype)
    lo, hi = bounds
    # Bounds as the array's own type (they fit where they are checked): mixing uint64 with a
    # Python int would compare in float64, where 2**63 - 1 and 2**63 are equal.
    check_lo, check_hi = info.min < lo, info.max > hi
    if arr.size and ((check_lo and arr.min() < arr.dtype.type(lo)) or (check_hi and arr.max() > arr.dtype.type(hi))):
        flat = arr.reshape(-1)
        bad = np.zeros(flat.shape, dtype=bool)
        if check_lo:
            bad |= flat < arr.dtype.type(lo)
        if check_hi:
            bad |= flat > arr.dtype.type(hi)
        i = int(np.flatnonzero(bad)[0])
        raise _out_of_range(name, i, int(flat[i]), bounds)
    arr = np.ascontiguousarray(arr, dtype=np.int64 if itemsize == 8 else np.int32)  # the same array if it already is
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    return arr, arr.ctypes.data if arr.size else 0, int(arr.size)


def _torch(values: Any, itemsize: int, name: str, bounds: tuple):
    import torch

    t = values.detach()
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise InvalidArgumentError(f"{name} must hold integers, got dtype {t.dtype}")
    t = t.reshape(-1).to(device="cpu")
    if t.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        # torch 2.3+'s uint16/32/64 lack min, max and comparisons: check them as numpy does
        return _numpy(t.numpy(), itemsize, name, bounds)
    info = torch.iinfo(t.dtype)
    lo, hi = bounds
    if t.numel() and ((info.min < lo and int(t.min()) < lo) or (info.max > hi and int(t.max()) > hi)):
        bad = torch.zeros(t.shape, dtype=torch.bool)
        if info.min < lo:
            bad |= t < lo
        if info.max > hi:
            bad |= t > hi
        i = int(torch.nonzero(bad)[0])
        raise _out_of_range(name, i, int(t[i]), bounds)
    t = t.to(dtype=torch.int64 if itemsize == 8 else torch.int32).contiguous()
    return t, t.data_ptr() if t.numel() else 0, int(t.numel())


def _out_of_range(name: str, i: int, value: int, bounds: tuple) -> InvalidArgumentError:
    return InvalidArgumentError(f"{name}[{i}] is {value}, outside {bounds[0]}..{bounds[1]}")


def _first_bad(values: Sequence[Any], name: str, bounds: tuple) -> InvalidArgumentError:
    """The error for the first element that is not an integer within ``bounds`` (only on the
    error path: this walks the values in Python)."""
    import operator

    for i, v in enumerate(values):
        try:
            iv = operator.index(v)
        except TypeError:
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:60] + "..."
            return InvalidArgumentError(f"{name}[{i}] is {shown}, not an integer")
        if not bounds[0] <= iv <= bounds[1]:
            return _out_of_range(name, i, iv, bounds)
    return InvalidArgumentError(f"{name} must hold integers from {bounds[0]} to {bounds[1]}")


def seq_len(values: Sequence[Any] | Any) -> int:
    """Number of elements without converting them."""
    shape = getattr(values, "shape", None)
    if shape is not None:
        n = 1
        for d in shape:
            n *= int(d)
        return n
    return len(values)
