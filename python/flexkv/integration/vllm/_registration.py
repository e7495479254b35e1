"""Registration of workers in other processes (TP > 1, multiprocess executor) over a Unix socket.

The scheduler side listens on a socket named after the engine id (in ``$XDG_RUNTIME_DIR``, else
the temp dir; mode 0600). Each worker connects, sends one JSON line (rank, world size, pid, the
layout of its KV cache shard) and gets one JSON line back; the engine then reaches the worker's
memory with process_vm_readv/writev. The connection stays open while the worker lives, so a
worker that exits is seen (and logged); its rank fails its transfers until it registers again.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from typing import Callable, Optional

from ... import _errors
from ...manager import KVLayer
from . import _log

PROTOCOL = 1


def socket_path(engine_id: str, override: Optional[str] = None) -> str:
    if override:
        return override
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"flexkv-{engine_id}.sock")


class RegistrationServer:
    """Accepts worker registrations and hands them to ``register(rank, world, pid, layers, blocks) -> bool``."""

    def __init__(self, path: str, world_size: int, register: Callable[..., bool]) -> None:
        self.path, self.world_size, self._register = path, world_size, register
        self.registered: set = set()
        self.ready = threading.Event()
        if os.path.exists(path):
            os.unlink(path)  # a stale socket of a previous engine with the same id
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600
        try:
            self._sock.bind(path)
        finally:
            os.umask(old)
        self._sock.listen(world_size * 2)
        self._closed = False
        threading.Thread(target=self._accept, name="flexkv-registration", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        rank = None
        with conn, conn.makefile("rwb") as f:
            try:
                msg = json.loads(f.readline())
                if msg.get("protocol") != PROTOCOL:
                    raise _errors.InvalidArgumentError(f"registration protocol {msg.get('protocol')}, expected {PROTOCOL}")
                rank, world = int(msg["rank"]), int(msg["world_size"])
                if world != self.world_size:
                    raise _errors.InvalidArgumentError(f"worker says the world size is {world}, the scheduler {self.world_size}")
                if rank in self.registered:
                    _log.logger.warning("FlexKv: rank %d registers again (a restarted worker)", rank)
                layers = [KVLayer(*l) for l in msg["layers"]]
                complete = self._register(rank, world, int(msg["pid"]), layers, int(msg["num_blocks"]))
                self.registered.add(rank)
                if complete:
                    self.ready.set()
                f.write((json.dumps({"ok": True, "complete": complete}) + "\n").encode())
                f.flush()
            except Exception as e:  # a bad registration is answered, never raised in the server
                f.write((json.dumps({"ok": False, "error": str(e)}) + "\n").encode())
                f.flush()
                return
            f.read()  # blocks until the worker closes the connection (it exited)
            _log.logger.warning("FlexKv: the worker of rank %s disconnected", rank)

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)


def register_with_scheduler(path: str, rank: int, world_size: int, layers, num_blocks: int,
                            timeout_s: float = 120.0) -> socket.socket:
    """Worker side: connects (waiting for the scheduler to listen), registers, and returns the
    open connection, which the worker keeps for as long as it lives."""
    deadline = time.monotonic() + timeout_s
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise _errors.InvalidStateError(
                    f"FlexKv: no scheduler listens on {path} after {timeout_s:.0f} s (rank {rank} of {world_size})")
            time.sleep(0.1)
    msg = {"protocol": PROTOCOL, "rank": rank, "world_size": world_size, "pid": os.getpid(), "num_blocks": num_blocks,
           "layers": [[l.base, l.block_stride, l.span_bytes, l.kv_stride, l.num_kv] for l in layers]}
    s.sendall((json.dumps(msg) + "\n").encode())
    s.settimeout(timeout_s)
    reply = json.loads(s.makefile("rb").readline() or b'{"ok": false, "error": "no answer"}')
    s.settimeout(None)
    if not reply.get("ok"):
        s.close()
        raise _errors.InvalidArgumentError(f"FlexKv refused the registration of rank {rank}: {reply.get('error')}")
    return s
