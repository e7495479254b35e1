"""Zero-copy (where possible) views of token ids and block ids as C arrays.

Accepts Python sequences, ``array.array``, numpy arrays and torch CPU tensors without
importing numpy or torch: their types are recognised by module name.
"""

from __future__ import annotations

from array import array
from typing import Any, Sequence, Tuple

_CODES = {8: "q", 4: "i"}


def as_c_array(values: Any, itemsize: int) -> Tuple[Any, int, int]:
    """Returns ``(keepalive, address, length)`` of ``values`` as a C array of signed ints.

    ``itemsize`` is 8 (int64 token ids) or 4 (int32 block ids). The caller keeps
    ``keepalive`` referenced for as long as the address is used.
    """
    code = _CODES[itemsize]
    if isinstance(values, array) and values.typecode == code:
        addr, n = values.buffer_info()
        return values, addr, n
    module = type(values).__module__
    if module.startswith("numpy"):
        import numpy as np

        dtype = np.int64 if itemsize == 8 else np.int32
        arr = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
        return arr, arr.ctypes.data if arr.size else 0, int(arr.size)
    if module.startswith("torch"):
        import torch

        dtype = torch.int64 if itemsize == 8 else torch.int32
        t = values.detach().reshape(-1).to(device="cpu", dtype=dtype).contiguous()
        return t, t.data_ptr() if t.numel() else 0, int(t.numel())
    arr = array(code, values if isinstance(values, (list, tuple, range)) else list(values))
    addr, n = arr.buffer_info()
    return arr, addr if n else 0, n


def seq_len(values: Sequence[Any] | Any) -> int:
    """Number of elements without converting them."""
    shape = getattr(values, "shape", None)
    if shape is not None:
        n = 1
        for d in shape:
            n *= int(d)
        return n
    return len(values)
