"""Whether the engine may read tensor-parallel workers' host memory (vLLM's CPU backend with
TP > 1 uses process_vm_readv/writev, which kernel.yama.ptrace_scope governs). vLLM's workers are
children of the engine's process, which scope 1 allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from . import FAIL, OK, WARN, Result

SCOPE = "/proc/sys/kernel/yama/ptrace_scope"
STATUS = "/proc/self/status"
CAP_SYS_PTRACE = 19
NVIDIA_DEVICE = "/dev/nvidiactl"


def has_cap_sys_ptrace(status: str = STATUS) -> bool:
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def check(cfg: Optional[Dict[str, Any]], scope_file: str = SCOPE, status: str = STATUS) -> List[Result]:
    tp = int((cfg or {}).get("tp_size", 1))
    scope_text = None
    try:
        scope_text = Path(scope_file).read_text().strip()
    except OSError:
        pass
    name = "ptrace"
    if scope_text is None:
        return [Result(name, OK, "no Yama LSM (kernel.yama.ptrace_scope absent): workers' host memory is reachable")]
    scope = int(scope_text) if scope_text.isdigit() else -1
    need = f"TP {tp}" if tp > 1 else "TP 1 (not needed; matters for a host-memory KV cache with TP > 1)"
    if scope in (0, 1):
        why = "any process of this user" if scope == 0 else "the engine's child processes (vLLM's workers)"
        return [Result(name, OK, f"kernel.yama.ptrace_scope = {scope}: {why} can be read; {need}")]
    cap = has_cap_sys_ptrace(status)
    if scope == 2 and cap:
        return [Result(name, OK, f"kernel.yama.ptrace_scope = 2 and this process has CAP_SYS_PTRACE; {need}")]
    # With a GPU the KV cache is most likely in GPU memory (CUDA IPC, no ptrace): only a warning.
    status_ = FAIL if tp > 1 and not Path(NVIDIA_DEVICE).exists() else WARN
    what = "admin only (CAP_SYS_PTRACE)" if scope == 2 else "no process may be read" if scope == 3 else f"value {scope_text}"
    return [Result(name, status_, f"kernel.yama.ptrace_scope = {scope_text} ({what}): the engine cannot reach "
                   f"TP workers' host-memory KV caches; {need}",
                   "sysctl kernel.yama.ptrace_scope=1" + (" (3 needs a reboot)" if scope == 3 else "")
                   + ", or run with CAP_SYS_PTRACE")]
