"""What the loaded library says about itself and about a configuration, without creating an
engine: :func:`build_info` (``flexkv_build_info``) and :func:`config_summary`
(``flexkv_config_summary``: what an engine would reserve, computed by the engine's own code)."""

from __future__ import annotations

import ctypes
import json
from typing import Any, Callable, Dict, Mapping

from . import _native
from ._errors import BufferTooSmallError
from .config import to_json


def _text(call: Callable[[Any, int, Any], int]) -> str:
    needed = ctypes.c_size_t()
    buf = ctypes.create_string_buffer(4096)
    rc = call(buf, len(buf), ctypes.byref(needed))
    if rc == BufferTooSmallError.status:
        buf = ctypes.create_string_buffer(needed.value)
        rc = call(buf, len(buf), ctypes.byref(needed))
    _native.check(rc)
    return buf.value.decode("utf-8")


def build_info() -> Dict[str, Any]:
    """ABI version, git commit and build date ("unknown" when not recorded), instruction set,
    .NET runtime and the CPU features the library's code uses."""
    lib = _native.lib()
    return json.loads(_text(lib.flexkv_build_info))


def config_summary(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Block bytes, CPU blocks and pool bytes, SSD slots and directories, redacted remote URL and
    fingerprint of an engine made from ``config`` (a normalized configuration dict); raises the
    engine's ConfigError for what it would refuse."""
    lib = _native.lib()
    raw = to_json(config)
    return json.loads(_text(lambda buf, cap, need: lib.flexkv_config_summary(raw, len(raw), buf, cap, need)))
