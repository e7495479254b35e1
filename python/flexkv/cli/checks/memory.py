"""Whether the CPU pool fits in memory (the engine refuses a pool above max_memory_fraction of
MemAvailable) and whether transparent huge pages are there for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from . import FAIL, OK, WARN, Result

MEMINFO = "/proc/meminfo"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
TIGHT = 0.8  # of the engine's limit: a pool above it leaves vLLM and the OS little room


def available_bytes(meminfo: str = MEMINFO) -> Optional[int]:
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def thp_mode(path: str = THP) -> Optional[str]:
    """The bracketed word of the THP setting (always, madvise, never), None without THP."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def check(summary: Dict[str, Any], meminfo: str = MEMINFO, thp: str = THP) -> List[Result]:
    out: List[Result] = []
    pool, frac = summary["cpu_pool_bytes"], summary["max_memory_fraction"]
    avail = available_bytes(meminfo)
    if avail is None:
        out.append(Result("memory", WARN, f"CPU pool {_gib(pool)}; MemAvailable is unknown ({meminfo} unreadable)",
                          "check free memory by hand"))
    elif pool > avail * frac:
        out.append(Result("memory", FAIL, f"the CPU pool needs {_gib(pool)} but {_gib(avail)} are available "
                          f"(limit {frac:.0%}): the engine refuses to start",
                          f"lower cpu_cache_gb to at most {avail * frac / (1 << 30):.1f}"))
    elif pool > avail * frac * TIGHT:
        out.append(Result("memory", WARN, f"the CPU pool takes {_gib(pool)} of {_gib(avail)} available",
                          "leave room for vLLM and the OS: lower cpu_cache_gb"))
    else:
        out.append(Result("memory", OK, f"CPU pool {_gib(pool)} fits ({_gib(avail)} available, limit {frac:.0%})"))
    if not summary["use_hugepage_cpu_buffer"]:
        out.append(Result("hugepages", OK, "not asked for (use_hugepage_cpu_buffer is false)"))
        return out
    mode = thp_mode(thp)
    if mode is None:
        out.append(Result("hugepages", WARN, "this kernel has no transparent huge pages: the pool uses 4 KiB pages",
                          "copies to and from the pool are slower; use a kernel with THP"))
    elif mode == "never":
        out.append(Result("hugepages", WARN, "transparent huge pages are off (never): the pool uses 4 KiB pages",
                          f"echo madvise > {thp}"))
    else:
        out.append(Result("hugepages", OK, f"transparent huge pages: {mode} (the pool asks for them)"))
    return out


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"
