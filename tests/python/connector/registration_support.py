"""Registration messages and the clients that send them, for the registration socket's tests.

The server believes a registration only from the process it names (SO_PEERCRED), which must
be the scheduler's process or one it started, and only for memory that process holds in
anonymous or shared writable mappings. So the messages sent from this process describe a
real anonymous buffer of this process, and a worker in another process is a child started
here (``registration_child.py``), which describes its own buffer."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

from flexkv.integration.vllm._registration import PROTOCOL

# Anonymous memory of this process that a registration from this process may describe.
BUFFER = mmap.mmap(-1, 1 << 20)
BASE = ctypes.addressof(ctypes.c_char.from_buffer(BUFFER))
LAYER = [BASE, 256, 128, 128, 2]  # base, block_stride, span_bytes, kv_stride, num_kv: 8 blocks use 2 KiB
CHILD = str(Path(__file__).with_name("registration_child.py"))


class RecordingEngine:
    """Stands in for the engine: records what the server registers and deregisters."""

    def __init__(self, world: int) -> None:
        self.world, self.ranks, self.calls = world, {}, []

    def register_rank(self, rank, world, pid, layers, num_blocks, cuda_ipc=None):
        self.calls.append(("register", rank, pid))
        self.ranks[rank] = pid
        return len(self.ranks) == self.world

    def deregister_rank(self, rank):
        self.calls.append(("deregister", rank))
        del self.ranks[rank]


def message(rank: int = 0, world: int = 2, pid: Optional[int] = None, **fields) -> dict:
    msg = {"protocol": PROTOCOL, "rank": rank, "world_size": world, "pid": os.getpid() if pid is None else pid,
           "num_blocks": 8, "memory": "host", "layers": [list(LAYER)]}
    msg.update(fields)
    return msg


def connect(path: str, timeout: float = 10) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: with a timeout set, a full listen backlog fails at once (EAGAIN)
    s.settimeout(timeout)
    return s


def read_reply(s: socket.socket) -> Optional[dict]:
    """The server's one-line answer, or None when it closed without one."""
    line = s.makefile("rb").readline()
    return json.loads(line) if line else None


def send_line(path: str, data: bytes, timeout: float = 10) -> tuple[socket.socket, Optional[dict]]:
    s = connect(path, timeout)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may refuse (and close) before it read everything: its answer is still there
    return s, read_reply(s)


def register(path: str, rank: int = 0, **kw) -> tuple[socket.socket, Optional[dict]]:
    """Sends one registration from this process; the connection is returned open (closing it
    deregisters the rank)."""
    return send_line(path, (json.dumps(message(rank, **kw)) + "\n").encode())


class ChildWorker:
    """A worker in a child process registering its own buffer; it keeps the connection until
    :meth:`exit`. ``orphan_holder``: once answered, the registered process exits at once and a
    child of its own keeps the connection open (a dead holder whose closing is not seen yet)."""

    def __init__(self, path: str, rank: int, world: int = 2, orphan_holder: bool = False) -> None:
        self.proc = subprocess.Popen([sys.executable, CHILD, path, str(rank), str(world),
                                      "orphan" if orphan_holder else "hold"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        self.reply = json.loads(line) if line.strip() else None
        if orphan_holder:
            self.proc.wait(10)  # the registered process is gone (reaped); its child holds the connection

    def exit(self) -> None:
        self.proc.stdin.close()  # the holder (this child, or its orphaned child) reads EOF and exits
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
