"""The C ABI agrees across flexkv.h, the built library's exports and the Python prototypes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from flexkv import _native
from conftest import REPO

HEADER = REPO / "src" / "FlexKv.Native" / "include" / "flexkv.h"


def header_prototypes() -> dict[str, list[str]]:
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    protos = {}
    for m in re.finditer(r"\bint\s+(flexkv_\w+)\s*\(([^)]*)\)\s*;", text):
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        protos[m.group(1)] = params
    return protos


def exported_symbols() -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(_native.library_path())],
                         check=True, capture_output=True, text=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if "flexkv_" in line}


# The header's handle types (flexkv_engine_t, flexkv_index_t, ...): all uint64_t.
HANDLES = tuple(re.findall(r"typedef\s+uint64_t\s+(flexkv_\w+_t)\s*;", HEADER.read_text()))


def c_kind(param: str) -> str:
    """Coarse type class of a C parameter: pointer, or its size in bytes."""
    if "*" in param:
        return "ptr"
    if param.startswith(("size_t", "int64_t", "uint64_t") + HANDLES):
        return "8"
    if param.startswith(("int32_t", "int ")):
        return "4"
    raise AssertionError(f"unexpected C parameter type: {param}")


def py_kind(t) -> str:
    import ctypes

    if t in (ctypes.c_char_p, ctypes.c_void_p) or hasattr(t, "_type_") and isinstance(t._type_, type):
        return "ptr"
    return str(ctypes.sizeof(t))


def test_header_matches_exports_and_python_prototypes():
    header = header_prototypes()
    assert header, "no prototypes parsed from flexkv.h"
    assert set(header) == exported_symbols()
    assert set(header) == set(_native.PROTOTYPES)
    for name, params in header.items():
        py = _native.PROTOTYPES[name]
        assert [c_kind(p) for p in params] == [py_kind(t) for t in py], name


def test_abi_version_matches():
    import ctypes

    v = ctypes.c_int32()
    assert _native.lib().flexkv_abi_version(ctypes.byref(v)) == 0
    assert v.value == _native.ABI_VERSION


def test_library_path_override_to_missing_file_is_a_clear_error(tmp_path):
    code = "import flexkv\ntry:\n    flexkv.PrefixIndex()\nexcept flexkv.LibraryNotFoundError as e:\n    print('ERR', e)\n"
    env = dict(os.environ, FLEXKV_LIBRARY_PATH=str(tmp_path / "nope.so"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "ERR" in out.stdout and "nope.so" in out.stdout and "build.sh" in out.stdout


def test_import_needs_only_the_standard_library():
    code = ("import sys, flexkv\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules and 'yaml' not in sys.modules\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_use_after_fork_raises_instead_of_deadlocking():
    code = (
        "import os, flexkv\n"
        "m = flexkv.KVManager({'num_cpu_blocks': 4, 'block_bytes': 64, 'use_hugepage_cpu_buffer': False})\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        m.stats()\n"
        "        os._exit(3)\n"
        "    except flexkv.ForkedProcessError:\n"
        "        os._exit(7)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
        "m.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "7", out.stderr


def test_cpu_feature_check_reads_cpuinfo(tmp_path):
    old = tmp_path / "cpuinfo"
    old.write_text("processor : 0\nflags : fpu sse sse2 avx\n")
    assert "avx2" in _native.missing_cpu_flags(str(old))
    assert _native.missing_cpu_flags() == []  # this machine runs the library
    assert _native.missing_cpu_flags(str(tmp_path / "absent")) == []


def test_glibc_version_is_read_from_confstr():
    assert _native.glibc_version(lambda name: "glibc 2.31") == (2, 31)
    assert _native.glibc_version(lambda name: "glibc 2.39.1") == (2, 39)
    assert _native.glibc_version(lambda name: "musl 1.2") is None
    assert _native.glibc_version(lambda name: None) is None
    assert _native.glibc_version() >= _native.REQUIRED_GLIBC  # this machine runs the library


def test_an_older_glibc_is_refused_before_the_library_is_loaded():
    code = ("from flexkv import _native\n"
            "_native.glibc_version = lambda: (2, 31)\n"
            "try:\n"
            "    _native.lib()\n"
            "except _native.LibraryNotFoundError as e:\n"
            "    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "REFUSED this system has glibc 2.31; libflexkv needs glibc >= 2.34" in out.stdout, out.stderr
