"""Who is at the other end of a registration connection.

The engine reads and writes the memory of the process a registration names, so the name is
not taken on trust: the kernel says which process connected (SO_PEERCRED, recorded at
connect()), and that process must be the scheduler's own or one it started, directly or not
(vLLM's executor starts its workers as children of the engine-core process, where the
scheduler runs). A process of the same user that the scheduler did not start, a sibling or
an ancestor, is refused, though the kernel would let it connect.
"""

from __future__ import annotations

import socket
import struct
from typing import Optional

from ..._errors import InvalidArgumentError

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_pid(conn: socket.socket) -> int:
    """The pid of the process that connected (0 when it is not visible from this pid namespace)."""
    return _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))[0]


def parent_of(pid: int) -> Optional[int]:
    """The parent pid of ``pid`` from /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        return int(stat.rsplit(b")", 1)[1].split()[1])
    except (IndexError, ValueError):
        return None


def is_descendant(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or was started by it (or by a process it started...)."""
    seen = set()
    while pid > 0 and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)  # a pid reused while we walk could make a loop
        parent = parent_of(pid)
        if parent is None:
            return False
        pid = parent
    return False


def check(conn: socket.socket, claimed: int, scheduler_pid: int) -> None:
    """Raises InvalidArgumentError unless process ``claimed`` is the one that connected and it
    descends from the scheduler's process."""
    actual = peer_pid(conn)
    if actual != claimed:
        raise InvalidArgumentError(
            f"the registration names pid {claimed}, but the connection comes from pid {actual}: a worker may only "
            "register its own memory")
    if not is_descendant(claimed, scheduler_pid):
        raise InvalidArgumentError(
            f"pid {claimed} was not started by the scheduler's process (pid {scheduler_pid}); only the workers "
            "that vLLM starts may register a KV cache")
