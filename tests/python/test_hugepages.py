"""A worker's host KV cache is moved to huge pages in place (contents unchanged), which is what
makes process_vm_readv/writev copies close to memcpy (benchmarks/xproc.py measures both)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from flexkv import _hugepages as hp

MiB = 1 << 20


def test_aligned_keeps_whole_huge_pages_and_merges_overlaps():
    assert hp.aligned([(2 * MiB + 1, 6 * MiB)]) == [(4 * MiB, 8 * MiB)]
    assert hp.aligned([(0, MiB)]) == []
    assert hp.aligned([(0, 4 * MiB), (2 * MiB, 4 * MiB)]) == [(0, 6 * MiB)]
    assert hp.aligned([(8 * MiB, 2 * MiB), (0, 2 * MiB)]) == [(0, 2 * MiB), (8 * MiB, 10 * MiB)]


def anon_huge_kib(address: int) -> int:
    """AnonHugePages of the mapping holding ``address`` (from /proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1])
    return 0


def thp_available() -> bool:
    try:
        return "[never]" not in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


def test_a_faulted_in_buffer_is_collapsed_in_place_with_its_contents():
    n = 32 * MiB
    buf = (ctypes.c_uint8 * n)()
    addr = ctypes.addressof(buf)
    for i in range(0, n, 4096):
        buf[i] = (i // 4096) % 251 + 1  # every small page faulted in, with content
    worker = hp.back_with_huge_pages([(addr, n)])
    if worker is not None:
        worker.join(120)
    assert all(buf[i] == (i // 4096) % 251 + 1 for i in range(0, n, 4096))
    if not thp_available() or worker is None or not worker.supported:
        pytest.skip("this kernel has no transparent huge pages or no MADV_COLLAPSE")
    assert worker.collapsed == n - 2 * MiB or worker.collapsed == n  # the whole huge pages inside the buffer
    assert anon_huge_kib(addr + n // 2) >= 2048, "MADV_COLLAPSE left the buffer on small pages"


def test_nothing_to_do_for_ranges_below_one_huge_page():
    buf = (ctypes.c_uint8 * 4096)()
    assert hp.back_with_huge_pages([(ctypes.addressof(buf), 4096)]) is None
