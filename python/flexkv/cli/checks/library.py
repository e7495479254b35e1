"""Whether libflexkv.so can load here: glibc, CPU features (checked before loading, since the
.NET runtime aborts the process on a CPU it cannot run on), then the load and its ABI."""

from __future__ import annotations

from typing import List, Tuple

from ... import _native
from . import FAIL, OK, WARN, Result

_GLIBC = ".".join(map(str, _native.REQUIRED_GLIBC))


def check() -> Tuple[List[Result], bool]:
    """The results, and whether the library is usable (later checks need it)."""
    out: List[Result] = []
    glibc = _native.glibc_version()
    if glibc is None:
        out.append(Result("glibc", WARN, "the C library is not glibc or its version is unknown",
                          f"libflexkv needs glibc >= {_GLIBC}; use a glibc-based distribution"))
    elif glibc < _native.REQUIRED_GLIBC:
        out.append(Result("glibc", FAIL, f"glibc {'.'.join(map(str, glibc))} is older than the {_GLIBC} libflexkv needs",
                          "use Debian 12, Ubuntu 22.04, RHEL 9 or newer"))
    else:
        out.append(Result("glibc", OK, f"glibc {'.'.join(map(str, glibc))} (libflexkv needs >= {_GLIBC})"))
    missing = _native.missing_cpu_flags()
    if missing:
        out.append(Result("cpu", FAIL, f"this CPU lacks {', '.join(missing)}",
                          "run on an x86-64-v3 CPU (Intel Haswell, AMD Zen or newer)"))
        return out, False
    out.append(Result("cpu", OK, "x86-64-v3: " + ", ".join(f.upper() for f in _native.REQUIRED_CPU_FLAGS)))
    if glibc is not None and glibc < _native.REQUIRED_GLIBC:
        return out, False
    try:
        from ...library_info import build_info

        info = build_info()
    except Exception as e:
        out.append(Result("library", FAIL, f"libflexkv.so does not load: {e}",
                          "reinstall the wheel or rebuild with ./build.sh; FLEXKV_LIBRARY_PATH selects another build"))
        return out, False
    sha = info["git_sha"] if info["git_sha"] == "unknown" else info["git_sha"][:12]
    out.append(Result("library", OK, f"{_native.library_path()} loads: ABI {info['abi_version']}, git {sha}, "
                                     f"{info['dotnet_runtime']}"))
    return out, True
