"""Whether vLLM is importable here (and which version), and whether its registry resolves
"FlexKVConnectorV1" to this package's class: the package's vllm.general_plugins entry point
points vLLM's entry at flexkv.integration.vllm.connector.FlexKVConnectorV1 unless
FLEXKV_USE_VLLM_WRAPPER=1 keeps vLLM's own wrapper. Importing vLLM takes seconds (it imports
PyTorch), so that part runs in a child process with a time limit."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, List, Optional

from . import FAIL, OK, SKIP, WARN, Result

OURS = "flexkv.integration.vllm.connector.FlexKVConnectorV1"
ENTRY_POINT = "flexkv.integration.vllm.plugin:register"
IMPORT_TIMEOUT_S = 180.0

# Run by the child: what vLLM's registry gives for the name once the plugin ran, as vLLM does.
_PROBE = r"""
import inspect, json
import vllm
from flexkv.integration.vllm.plugin import register
register()
from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory
loader = KVConnectorFactory._registry.get("FlexKVConnectorV1")
cls = loader() if loader else None
print(json.dumps({"class": f"{cls.__module__}.{cls.__qualname__}" if cls else None,
                  "file": inspect.getfile(cls) if cls else None, "version": getattr(vllm, "__version__", None)}))
"""


def vllm_version() -> Optional[str]:
    """The installed distribution's version; None when vLLM is not importable at all."""
    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        return metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return "unknown"  # importable without distribution metadata (a source tree): the probe says


def entry_point_registered() -> bool:
    try:
        eps = metadata.entry_points()
        group = eps.select(group="vllm.general_plugins") if hasattr(eps, "select") else eps.get("vllm.general_plugins", [])
    except Exception:
        return False
    return any(ep.value.replace(" ", "") == ENTRY_POINT for ep in group)


def check(tick: Optional[Callable[[], None]] = None) -> List[Result]:
    """``tick`` is called while vLLM is being imported (the caller's progress line)."""
    version = vllm_version()
    if version is None:
        return [Result("vllm", SKIP, "vLLM is not installed in this Python (fine for planning and inspection)",
                       "pip install vllm where the connector should run")]
    out: List[Result] = []
    if not entry_point_registered():
        out.append(Result("vllm", WARN, "this flexkv has no vllm.general_plugins entry point (not installed as a "
                          "wheel?): vLLM keeps its own FlexKVConnectorV1 wrapper",
                          "pip install the flexkv wheel into this environment"))
    proc = subprocess.Popen([sys.executable, "-c", _PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                out.append(Result("vllm", FAIL, f"importing vLLM took longer than {IMPORT_TIMEOUT_S:.0f} s",
                                  "check the vLLM installation (python -c 'import vllm')"))
                return out
            if tick:
                tick()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        out.insert(0, Result("vllm", OK, f"vLLM {version} is installed"))
        out.append(Result("vllm", FAIL, f"vLLM's connector registry cannot be read: {last}",
                          "check the vLLM installation (python -c 'import vllm')"))
        return out
    found = json.loads(done.stdout.strip().splitlines()[-1])
    out.insert(0, Result("vllm", OK, f"vLLM {found['version'] or version} is importable"))
    wrapper = os.environ.get("FLEXKV_USE_VLLM_WRAPPER", "").strip().lower() in ("1", "true", "yes", "on")
    here = str(Path(__file__).resolve().parents[2])
    if found["class"] is None:
        out.append(Result("vllm", FAIL, "vLLM's registry has no FlexKVConnectorV1", "reinstall the flexkv wheel"))
    elif found["class"] == OURS and str(Path(found["file"]).resolve()).startswith(here):
        out.append(Result("vllm", OK, f"FlexKVConnectorV1 resolves to {OURS} of this package"))
    elif found["class"] == OURS:
        out.append(Result("vllm", WARN, f"FlexKVConnectorV1 resolves to {OURS} of another copy ({found['file']})",
                          "uninstall the other copy, or run this flexkv from the environment vLLM uses"))
    elif wrapper:
        out.append(Result("vllm", WARN, f"FLEXKV_USE_VLLM_WRAPPER=1: FlexKVConnectorV1 is vLLM's wrapper "
                          f"({found['class']}): no reset_cache, no connector stats", "unset FLEXKV_USE_VLLM_WRAPPER"))
    else:
        out.append(Result("vllm", FAIL, f"FlexKVConnectorV1 resolves to {found['class']}, not this package's class",
                          "reinstall the flexkv wheel (its plugin points vLLM at FlexKv's class)"))
    return out
