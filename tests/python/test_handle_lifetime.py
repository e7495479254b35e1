"""A handle collected while the interpreter-exit hook holds the registry lock (garbage collection
runs at any allocation, on the thread holding it) releases its native object without waiting
for that lock: it used to deadlock the exit of `flexkv plan` after an error."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

COLLECT_UNDER_THE_LOCK = """
import flexkv
from flexkv import _handle
index = flexkv.PrefixIndex(4, 16)
with _handle._live_lock:  # as _close_all holds it while a collection runs __del__
    del index
print("released")
"""


def test_a_handle_collected_under_the_registry_lock_does_not_deadlock():
    out = subprocess.run([sys.executable, "-c", COLLECT_UNDER_THE_LOCK], capture_output=True, text=True, timeout=20,
                         env={"PYTHONPATH": str(REPO / "python"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and "released" in out.stdout, out.stderr
