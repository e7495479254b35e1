"""Whether each SSD cache directory works for the engine: it exists or can be created, belongs
to this user, is writable, takes O_DIRECT, has the free space the configuration asks for, and
whether it already holds a persistent cache (and whether this configuration would reuse it)."""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from .._locks import holder
from . import FAIL, OK, SKIP, WARN, Result

ALIGNMENT = 4096  # O_DIRECT: offsets, lengths and buffers (the engine's SSD slot granularity)


def check(dirs: List[str], summary: Optional[Dict[str, Any]], cfg: Optional[Dict[str, Any]]) -> List[Result]:
    """``dirs``: the directories (from --ssd-dir or ssd_cache_dir); ``summary``: the engine's view
    of the configuration (None: sizes unknown)."""
    if not dirs:
        return [Result("ssd", SKIP, "no SSD tier configured (ssd_cache_gb is 0) and no --ssd-dir")]
    out: List[Result] = []
    usable = True
    for d, path in enumerate(dirs):
        state = _directory(path, out)
        usable &= state == "exists"
        if state == "exists":
            _direct(path, summary, out)
        if state != "bad":
            _space(path, d, len(dirs), summary, out)
    if usable:
        _persistent(dirs, summary, cfg, out)
    return out


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _directory(path: str, out: List[Result]) -> str:
    """"exists" (usable), "creatable" (the engine makes it) or "bad"."""
    p = Path(path)
    if not p.exists():
        parent = _nearest_existing(p.absolute())
        if not parent.is_dir():
            out.append(Result("ssd", FAIL, f"{path} cannot be created: {parent} is not a directory",
                              "set ssd_cache_dir to a directory on the SSD"))
            return "bad"
        if not os.access(parent, os.W_OK | os.X_OK):
            out.append(Result("ssd", FAIL, f"{path} cannot be created: {parent} is not writable by this user",
                              f"create it: mkdir -p {path} && chown {os.geteuid()} {path}"))
            return "bad"
        out.append(Result("ssd", OK, f"{path} does not exist yet; the engine creates it (0700) under {parent}"))
        return "creatable"
    if not p.is_dir():
        out.append(Result("ssd", FAIL, f"{path} is not a directory", "set ssd_cache_dir to a directory"))
        return "bad"
    owner = p.stat().st_uid
    if owner != os.geteuid():
        out.append(Result("ssd", FAIL, f"{path} belongs to uid {owner}, not to this user (uid {os.geteuid()}): "
                          "the engine refuses it", f"chown {os.geteuid()} {path}, or use a directory of your own"))
        return "bad"
    try:
        fd, probe = tempfile.mkstemp(prefix=".flexkv-check-", dir=path)
        try:
            os.write(fd, b"flexkv")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        out.append(Result("ssd", FAIL, f"{path} is not writable: {e.strerror or e}",
                          "make it writable by this user (read-only mount? full disk?)"))
        return "bad"
    out.append(Result("ssd", OK, f"{path} is a writable directory of this user"))
    return "exists"


def _direct(path: str, summary: Optional[Dict[str, Any]], out: List[Result]) -> None:
    if summary is not None and not summary["ssd_direct_io"]:
        out.append(Result("ssd", OK, f"{path}: buffered I/O as configured (ssd_direct_io is false)"))
        return
    probe = os.path.join(path, f".flexkv-check-direct-{os.getpid()}")
    buf = mmap.mmap(-1, ALIGNMENT)  # page-aligned, as O_DIRECT needs
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_DIRECT", 0), 0o600)
        try:
            os.write(fd, buf)
        finally:
            os.close(fd)
        out.append(Result("ssd", OK, f"{path} supports O_DIRECT (SSD blocks bypass the page cache)"))
    except OSError as e:
        if e.errno != errno.EINVAL:
            out.append(Result("ssd", WARN, f"{path}: O_DIRECT probe failed: {e.strerror}", "check the filesystem"))
        else:
            out.append(Result("ssd", WARN, f"{path} does not support O_DIRECT: the engine falls back to buffered I/O "
                              "(the page cache holds SSD blocks too)",
                              "use a local ext4 or xfs filesystem, or set ssd_direct_io: false to choose buffered I/O"))
    finally:
        buf.close()
        try:
            os.unlink(probe)
        except OSError:
            pass


def _space(path: str, d: int, n: int, summary: Optional[Dict[str, Any]], out: List[Result]) -> None:
    if summary is None or not summary["ssd_slots"]:
        out.append(Result("ssd", SKIP, f"{path}: free space not checked (no ssd_cache_gb in the configuration)"))
        return
    slots, extent = summary["ssd_slots"], summary["ssd_slot_bytes"]
    need = (slots - d + n - 1) // n * extent  # slot s lives in directory s % n
    data = os.path.join(path, "flexkv-blocks.dat")
    have = os.path.getsize(data) if os.path.exists(data) else 0  # already reserved by an earlier run
    st = os.statvfs(_nearest_existing(Path(path).absolute()))
    free = st.f_bavail * st.f_frsize
    if need - have > free:
        out.append(Result("ssd", FAIL, f"{path} needs {_gib(need)} for its share of ssd_cache_gb "
                          f"({_gib(have)} reserved already) but {_gib(free)} are free",
                          f"lower ssd_cache_gb or free {_gib(need - have - free)}"))
    else:
        out.append(Result("ssd", OK, f"{path}: {_gib(need)} needed, {_gib(free + have)} available"))


def _persistent(dirs: List[str], summary: Optional[Dict[str, Any]], cfg: Optional[Dict[str, Any]],
                out: List[Result]) -> None:
    from ...ssd_inspect import SsdCache

    spec = ";".join(dirs)
    pid = holder(os.path.join(dirs[0], "flexkv.lock"))
    if pid is not None:
        out.append(Result("ssd", WARN, f"{dirs[0]} is in use by process {pid or '(not visible)'} (a running engine)",
                          "give each engine its own ssd_cache_dir"))
    compare = cfg is not None and summary is not None and summary.get("geometry_known") and summary["ssd_slots"]
    try:
        with SsdCache(spec, cfg if compare else None) as cache:
            s = cache.summary()
    except Exception as e:  # the library is needed; its absence is reported by the library check
        out.append(Result("ssd", SKIP, f"{spec}: persistent cache not inspected ({e})"))
        return
    if not s["journal"]["exists"]:
        out.append(Result("ssd", OK, f"{dirs[0]} holds no persistent cache yet"))
        return
    if not s["readable"]:
        out.append(Result("ssd", WARN, f"{dirs[0]} holds a journal the engine cannot use: {s['problem']}",
                          "an engine starts this cache empty; flexkv inspect shows more"))
        return
    held = f"a persistent cache: {s['blocks']:,} blocks ({_gib(s['bytes'])}), fingerprint {s['fingerprint'][:12]}"
    if not compare:
        out.append(Result("ssd", OK, f"{spec} holds {held} (give the model geometry to check it would be reused)"))
    elif s["config"]["reused"]:
        out.append(Result("ssd", OK, f"{spec} holds {held}; this configuration reuses it"))
    else:
        out.append(Result("ssd", WARN, f"{spec} holds {held} that this configuration discards: "
                          f"{s['config']['discard_reason']}",
                          "start with the configuration that wrote it, or accept an empty cache"))


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"
