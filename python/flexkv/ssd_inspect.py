"""What a persistent SSD cache directory holds, read without changing it (``flexkv_ssd_*``):
the journal is copied and replayed by the engine's own reader; blocks are re-read and checked by
the SSD tier's own reader over read-only files. Only :meth:`SsdCache.repair` writes."""

from __future__ import annotations

import ctypes
import json
from ctypes import byref, c_int32, c_size_t, c_uint64
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from . import _native
from ._errors import BufferTooSmallError
from ._handle import Handle
from .config import to_json

VERIFY_SLOTS_PER_CALL = 4096  # one call's slot range: small enough for a progress line to move


class SsdCache(Handle):
    """An SSD cache in ``dirs`` (';'-separated, as ``ssd_cache_dir``), optionally compared with a
    configuration (whether an engine made from it would reuse the cache)."""

    def __init__(self, dirs: str, config: Optional[Mapping[str, Any]] = None) -> None:
        lib = _native.lib()
        raw_dirs = dirs.encode("utf-8")
        raw_cfg = to_json(config) if config is not None else None
        h = c_uint64()
        _native.check(lib.flexkv_ssd_open(raw_dirs, len(raw_dirs), raw_cfg, len(raw_cfg) if raw_cfg else 0, byref(h)))
        self._lib = lib
        self._adopt(h.value, lib.flexkv_ssd_close)

    def summary(self) -> Dict[str, Any]:
        """Files, journal state, geometry, blocks (and the configuration's verdict) as a dict."""
        needed = c_size_t()
        buf = ctypes.create_string_buffer(16384)
        rc = self._lib.flexkv_ssd_summary(self._h(), buf, len(buf), byref(needed))
        if rc == BufferTooSmallError.status:
            buf = ctypes.create_string_buffer(needed.value)
            rc = self._lib.flexkv_ssd_summary(self._h(), buf, len(buf), byref(needed))
        _native.check(rc)
        return json.loads(buf.value.decode("utf-8"))

    def verify(self, slots: int, bad_limit: int = 1000) -> Iterator[Tuple[int, int, int, List[int]]]:
        """Re-reads every block, one slot range per call; yields (slots done, blocks checked, bad
        blocks, the first ``bad_limit`` bad slots) after each range, so callers can show progress."""
        bad = (c_int32 * bad_limit)()
        n_bad, n_checked = c_int32(), c_int32()
        found: List[int] = []
        checked = bad_total = 0
        for first in range(0, max(slots, 0), VERIFY_SLOTS_PER_CALL):
            count = min(VERIFY_SLOTS_PER_CALL, slots - first)
            _native.check(self._lib.flexkv_ssd_verify(self._h(), first, count, bad, bad_limit, byref(n_bad),
                                                      byref(n_checked)))
            checked += n_checked.value
            bad_total += n_bad.value
            found.extend(bad[: max(0, min(n_bad.value, bad_limit - len(found)))])
            yield first + count, checked, bad_total, found

    def repair(self, slots: List[int]) -> int:
        """Journals ``slots`` as empty in the cache (fails while an engine uses it); returns how many held a block."""
        arr = (c_int32 * max(len(slots), 1))(*slots)
        removed = c_int32()
        _native.check(self._lib.flexkv_ssd_repair(self._h(), arr, len(slots), byref(removed)))
        return removed.value
