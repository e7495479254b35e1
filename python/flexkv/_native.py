"""The one place that loads libflexkv.so and declares every C prototype (see flexkv.h).

Set ``FLEXKV_LIBRARY_PATH`` to load another build of the library. The .NET runtime inside
the library does not survive ``fork()``: a child forked after the first call must not use it
(use ``multiprocessing`` with the ``spawn`` start method); such a call raises
:class:`ForkedProcessError` instead of deadlocking.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_int32, c_int64, c_size_t, c_uint8, c_uint64, c_void_p
from pathlib import Path

from ._errors import BY_STATUS, FlexKVError, ForkedProcessError, InternalError, LibraryNotFoundError

ABI_VERSION = 2
MATCH_PENDING = -1  # flexkv_get_num_new_matched_tokens: the remote store is being asked
LIBRARY_NAME = "libflexkv.so"


class Layer(ctypes.Structure):
    """``flexkv_layer_t``: where one layer's blocks live in a registered KV cache."""

    _fields_ = [
        ("base", c_uint64),
        ("block_stride", c_int64),
        ("kv_stride", c_int64),
        ("span_bytes", c_int64),
        ("num_kv", c_int32),
        ("reserved", c_int32),
    ]


class CudaIpc(ctypes.Structure):
    """``flexkv_cuda_ipc_t``: a worker's CUDA tensor as another process can map it."""

    _fields_ = [
        ("handle", ctypes.c_uint8 * 64),
        ("offset", c_uint64),
        ("pci_bus_id", ctypes.c_char * 32),
    ]


class KvEvent(ctypes.Structure):
    """``flexkv_kv_event_t``: one KV event, its block named by vLLM's hash (and its parent's)."""

    _fields_ = [
        ("kind", c_uint8),
        ("medium", c_uint8),
        ("hash_len", c_uint8),
        ("parent_len", c_uint8),
        ("reserved", c_uint8 * 4),
        ("hash", c_uint8 * 32),
        ("parent", c_uint8 * 32),
    ]


MAX_HASH_BYTES = 32
KV_EVENT_STORED, KV_EVENT_REMOVED, KV_EVENT_CLEARED = 1, 2, 3

_P = POINTER
# name -> argtypes; every export returns int32 status.
PROTOTYPES: dict[str, list] = {
    "flexkv_abi_version": [_P(c_int32)],
    "flexkv_last_error": [c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_engine_create": [c_char_p, c_size_t, _P(c_uint64)],
    "flexkv_engine_destroy": [c_uint64],
    "flexkv_engine_shutdown": [c_uint64],
    "flexkv_register_kv_caches": [c_uint64, _P(Layer), c_size_t, c_int32],
    "flexkv_register_cuda_kv_caches": [c_uint64, _P(Layer), c_size_t, c_int32, c_int32],
    "flexkv_register_process_kv_caches": [c_uint64, c_int32, _P(Layer), c_size_t, c_int32],
    "flexkv_register_rank_kv_caches": [c_uint64, c_int32, c_int32, c_int32, _P(Layer), c_size_t, c_int32, _P(c_int32)],
    "flexkv_register_rank_cuda_kv_caches": [
        c_uint64, c_int32, c_int32, _P(CudaIpc), _P(Layer), c_size_t, c_int32, _P(c_int32)],
    "flexkv_deregister_rank": [c_uint64, c_int32],
    "flexkv_cuda_ipc_export": [c_uint64, _P(CudaIpc)],
    "flexkv_reset": [c_uint64],
    "flexkv_stats": [c_uint64, c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_wait": [c_uint64, c_int32, _P(c_int32)],
    "flexkv_metrics_read": [c_uint64, _P(c_int64), c_size_t, _P(c_size_t)],
    "flexkv_metrics_names": [c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_kv_events_enable": [c_uint64, c_int32],
    "flexkv_set_block_hashes": [c_uint64, c_char_p, c_size_t, c_int32, c_char_p, c_size_t, c_size_t],
    "flexkv_kv_events_take": [c_uint64, _P(KvEvent), c_size_t, _P(c_size_t)],
    "flexkv_get_num_new_matched_tokens": [
        c_uint64, c_char_p, c_size_t, c_void_p, c_size_t, c_int32, c_char_p, c_size_t, _P(c_int32)],
    "flexkv_update_state_after_alloc": [c_uint64, c_char_p, c_size_t, c_void_p, c_size_t, c_int32],
    "flexkv_request_finished": [
        c_uint64, c_char_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t, c_int32, c_char_p, c_size_t,
        _P(c_int32)],
    "flexkv_cancel_request": [c_uint64, c_char_p, c_size_t],
    "flexkv_extend_tokens": [c_uint64, c_char_p, c_size_t, c_void_p, c_size_t, c_int32],
    "flexkv_launch_tasks": [c_uint64, _P(c_int32)],
    "flexkv_query_finished_task": [
        c_uint64, _P(c_uint8), c_size_t, _P(c_size_t), _P(c_int32), c_size_t, _P(c_size_t)],
    "flexkv_index_create": [c_int32, c_int64, _P(c_uint64)],
    "flexkv_index_destroy": [c_uint64],
    "flexkv_index_match": [c_uint64, c_int64, c_void_p, c_size_t, _P(c_int32)],
    "flexkv_index_insert": [c_uint64, c_int64, c_void_p, c_size_t, _P(c_int32)],
    "flexkv_index_info": [c_uint64, _P(c_int64), _P(c_int64)],
    "flexkv_index_replay": [
        c_uint64, c_void_p, c_size_t, c_void_p, c_void_p, c_size_t, _P(c_int32), _P(c_int64)],
    "flexkv_plan_create": [c_int32, c_int64, c_int64, _P(c_uint64)],
    "flexkv_plan_destroy": [c_uint64],
    "flexkv_plan_replay": [
        c_uint64, c_void_p, c_size_t, c_void_p, c_void_p, c_size_t, c_void_p, c_void_p, c_void_p],
    "flexkv_plan_replay_mooncake": [
        c_uint64, c_void_p, c_size_t, c_void_p, c_void_p, c_void_p, c_size_t, c_int32, c_int64, c_void_p, c_void_p,
        c_void_p],
    "flexkv_plan_stats": [c_uint64, c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_build_info": [c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_config_summary": [c_char_p, c_size_t, c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_ssd_open": [c_char_p, c_size_t, c_char_p, c_size_t, _P(c_uint64)],
    "flexkv_ssd_summary": [c_uint64, c_char_p, c_size_t, _P(c_size_t)],
    "flexkv_ssd_verify": [c_uint64, c_int32, c_int32, _P(c_int32), c_size_t, _P(c_int32), _P(c_int32)],
    "flexkv_ssd_repair": [c_uint64, _P(c_int32), c_size_t, _P(c_int32)],
    "flexkv_ssd_close": [c_uint64],
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_loaded_pid: int | None = None
_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = _lib is not None


os.register_at_fork(after_in_child=_mark_forked)


def forked() -> bool:
    """Whether this process was forked after the library started (it must not be used then)."""
    return _forked


# The library is compiled for x86-64-v3; on a CPU without these the .NET runtime would abort
# the whole process at load, so check first.
REQUIRED_CPU_FLAGS = ("avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe")


def missing_cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> list:
    """CPU features the library needs that this machine lacks (empty when unknown)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in REQUIRED_CPU_FLAGS if flag not in have]
    except OSError:
        pass
    return []


# The library uses glibc symbols up to GLIBC_2.34 (hence the wheel's manylinux_2_34 tag). On an
# older glibc, dlopen fails with a bare "version `GLIBC_2.34' not found": check first, as for the CPU.
REQUIRED_GLIBC = (2, 34)


def glibc_version(confstr=os.confstr):
    """This process's glibc version as a tuple, e.g. (2, 36); None when unknown (another libc)."""
    try:
        text = confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    name, _, version = text.partition(" ")
    try:
        return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else None
    except ValueError:
        return None


def library_path() -> Path:
    """Path of the library that :func:`lib` loads."""
    override = os.environ.get("FLEXKV_LIBRARY_PATH")
    return Path(override) if override else Path(__file__).with_name(LIBRARY_NAME)


def lib() -> ctypes.CDLL:
    """Loads the library once, declares every prototype and checks the ABI version."""
    global _lib, _loaded_pid
    if _forked:
        raise ForkedProcessError(
            "libflexkv was started in the parent process and cannot be used after fork(); "
            "create engines in processes started with multiprocessing's 'spawn' method")
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = library_path()
            if not path.is_file():
                raise LibraryNotFoundError(
                    f"{path} does not exist; build it with ./build.sh or set FLEXKV_LIBRARY_PATH")
            glibc = glibc_version()
            if glibc is not None and glibc < REQUIRED_GLIBC:
                raise LibraryNotFoundError(
                    f"this system has glibc {'.'.join(map(str, glibc))}; libflexkv needs glibc >= "
                    f"{'.'.join(map(str, REQUIRED_GLIBC))} (Debian 12, Ubuntu 22.04, RHEL 9 or newer)")
            missing = missing_cpu_flags()
            if missing:
                raise LibraryNotFoundError(
                    f"this CPU lacks {', '.join(missing)}; libflexkv needs an x86-64-v3 CPU (AVX2, BMI2, FMA)")
            try:
                handle = ctypes.CDLL(str(path))
            except OSError as e:
                raise LibraryNotFoundError(f"cannot load {path}: {e}") from e
            for name, argtypes in PROTOTYPES.items():
                fn = getattr(handle, name)
                fn.argtypes = argtypes
                fn.restype = c_int32
            version = c_int32()
            handle.flexkv_abi_version(ctypes.byref(version))
            if version.value != ABI_VERSION:
                raise LibraryNotFoundError(
                    f"{path} has ABI version {version.value}; this package needs {ABI_VERSION}")
            _lib = handle
            _loaded_pid = os.getpid()
    return _lib


def last_error() -> str:
    """The calling thread's last error message from the library."""
    lib_ = lib()
    needed = c_size_t()
    buf = ctypes.create_string_buffer(512)
    rc = lib_.flexkv_last_error(buf, len(buf), ctypes.byref(needed))
    if rc == BY_STATUS_TOO_SMALL:
        buf = ctypes.create_string_buffer(needed.value)
        lib_.flexkv_last_error(buf, len(buf), ctypes.byref(needed))
    return buf.value.decode("utf-8", errors="replace")


BY_STATUS_TOO_SMALL = -4


def check(rc: int) -> int:
    """Raises the typed exception for a non-zero status, with the library's message."""
    if rc == 0:
        return rc
    cls = BY_STATUS.get(rc, InternalError)
    raise cls(last_error() or f"libflexkv returned status {rc}", rc)


def error_for(rc: int) -> FlexKVError:
    """The exception a status maps to (without raising)."""
    return BY_STATUS.get(rc, InternalError)(last_error(), rc)
