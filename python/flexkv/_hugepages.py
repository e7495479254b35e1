"""Huge pages for a worker's KV cache in host memory (vLLM's CPU backend with TP > 1).

The engine copies a worker's blocks with process_vm_readv/writev, and the kernel pins the
worker's pages a few at a time: with 4 KiB pages that costs about a third of the copy's
speed; 2 MiB pages make it close to memcpy. vLLM allocates the cache before FlexKv sees it,
so the worker marks it MADV_HUGEPAGE and collapses it in place (MADV_COLLAPSE, Linux 6.1+)
on a background thread, a chunk at a time; the contents do not change and the model may
run meanwhile. Where the kernel has no THP or no MADV_COLLAPSE, nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Iterable, List, Optional, Tuple

MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20
CHUNK = 64 << 20  # one madvise call: short enough to let other threads take the mm lock

_log = logging.getLogger("flexkv")


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc


def aligned(ranges: Iterable[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """The whole huge pages inside each (address, bytes) range, merged where they overlap."""
    out: List[Tuple[int, int]] = []
    for start, n in sorted(ranges):
        lo, hi = -(-start // HUGE_PAGE) * HUGE_PAGE, (start + n) // HUGE_PAGE * HUGE_PAGE
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def back_with_huge_pages(ranges: Iterable[Tuple[int, int]], collapse: bool = True) -> Optional[threading.Thread]:
    """Marks the ranges for huge pages and, with ``collapse``, starts the daemon thread that
    collapses them (returned, so callers may join it). Never raises."""
    spans = aligned(ranges)
    if not spans:
        return None
    libc = _libc()
    for lo, hi in spans:
        if libc.madvise(lo, hi - lo, MADV_HUGEPAGE) != 0:
            _log.debug("FlexKv: madvise(MADV_HUGEPAGE) failed (errno %d): no transparent huge pages here",
                       ctypes.get_errno())
            return None
    if not collapse:
        return None

    def run() -> None:
        t0, done = time.perf_counter(), 0
        t.supported = True
        for lo, hi in spans:
            for a in range(lo, hi, CHUNK):
                n = min(CHUNK, hi - a)
                if libc.madvise(a, n, MADV_COLLAPSE) != 0:
                    err = ctypes.get_errno()
                    if err in (22, 38, 1):  # EINVAL, ENOSYS, EPERM: this kernel cannot; khugepaged may later
                        _log.debug("FlexKv: MADV_COLLAPSE is not available (errno %d)", err)
                        t.supported = False
                        return
                    continue  # EAGAIN/ENOMEM on one chunk: keep its small pages
                done += n
                t.collapsed = done
        _log.info("FlexKv: %.1f GiB of the KV cache now on huge pages (%.1f s)", done / (1 << 30),
                  time.perf_counter() - t0)

    t = threading.Thread(target=run, name="flexkv-huge-pages", daemon=True)
    t.collapsed = 0  # bytes moved to huge pages so far
    t.supported = True  # False once the kernel refused MADV_COLLAPSE
    t.start()
    return t
