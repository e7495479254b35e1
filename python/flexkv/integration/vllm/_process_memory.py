"""Whether memory a worker registers may be written by the engine, from /proc/PID/maps.

The engine writes loaded blocks into the registered ranges with process_vm_writev, which
writes anything the process has mapped writable: a library's data, a file mapped shared. A KV
cache is ordinary memory (malloc, mmap, torch), so each range must lie inside writable
mappings that are anonymous or shared memory (/dev/shm, memfd, SysV, hugetlbfs): no file's
mapping, no stack, no kernel-provided page. Adjacent mappings count as one range, since one
allocation is often split into several (huge pages, mprotect).

A limit: a library's .bss shows as an anonymous mapping like any other, so it is accepted;
only the registering process itself can be harmed by that, as the scheduler checks that the
registration comes from the process it names.
"""

from __future__ import annotations

import bisect
from typing import List, NamedTuple, Optional, Sequence, Tuple

from ..._errors import InvalidArgumentError

_TOP = 2 ** 64
# Paths of mappings that are memory rather than files (names as /proc/PID/maps prints them).
_MEMORY_PATHS = ("[heap]",)
_MEMORY_PREFIXES = ("[anon:", "[anon_shmem:", "/dev/shm/", "/memfd:", "/SYSV", "/dev/zero", "/anon_hugepage",
                    "/dev/hugepages/")


class Mapping(NamedTuple):
    lo: int
    hi: int
    perms: str
    path: str  # "" for anonymous memory; " (deleted)" is kept as the kernel prints it


def parse(maps_text: str) -> List[Mapping]:
    out = []
    for line in maps_text.splitlines():
        f = line.split(maxsplit=5)
        if len(f) < 5:
            continue
        lo, _, hi = f[0].partition("-")
        out.append(Mapping(int(lo, 16), int(hi, 16), f[1], f[5].strip() if len(f) == 6 else ""))
    out.sort()
    return out


def _why_not(m: Mapping) -> Optional[str]:
    """Why the engine may not write into mapping ``m`` (None: it may)."""
    memory = m.path == "" or m.path in _MEMORY_PATHS or m.path.startswith(_MEMORY_PREFIXES)
    if not memory:
        return f"is in {m.path}" if m.path.startswith("[") else f"is in a mapping of the file {m.path}"
    if not m.perms.startswith("rw"):
        return f"is in a mapping that is not writable ({m.perms})"
    return None


def problem(mappings: List[Mapping], lo: int, size: int) -> Optional[str]:
    """Why [lo, lo + size) is not writable anonymous or shared memory, or None if it is."""
    hi = lo + size
    if hi > _TOP:
        return "ends past the top of the address space"
    starts = [m.lo for m in mappings]
    at = lo
    i = bisect.bisect_right(starts, at) - 1
    while at < hi:
        if i < 0 or i >= len(mappings) or not mappings[i].lo <= at < mappings[i].hi:
            return f"is not mapped at {at:#x}"
        why = _why_not(mappings[i])
        if why:
            return why
        at = mappings[i].hi
        i += 1
    return None


def check_ranges(pid: int, ranges: Sequence[Tuple[str, int, int]]) -> None:
    """Raises InvalidArgumentError unless every ``(what, address, bytes)`` range lies in writable
    anonymous or shared memory of process ``pid``."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            mappings = parse(f.read())
    except OSError as e:
        raise InvalidArgumentError(f"cannot read the memory map of process {pid} ({e.strerror}) to check its "
                                   "KV cache") from None
    for what, lo, size in ranges:
        why = problem(mappings, lo, size)
        if why:
            raise InvalidArgumentError(
                f"{what} ({size} bytes at {lo:#x}) {why} in process {pid}; a KV cache must be in anonymous or "
                "shared writable memory")
