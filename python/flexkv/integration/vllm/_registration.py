"""Registration of workers in other processes (TP > 1, multiprocess executor) over a Unix socket.

vLLM's workers register their KV caches *before* the scheduler (and so the engine) exists: the
engine-core process waits for that step before it builds the scheduler. So a worker never
blocks on the engine: it hands its registration to a background thread that connects as soon
as the scheduler listens. The scheduler listens on a socket named after the engine id (in
``$XDG_RUNTIME_DIR``, else the temp dir; mode 0600) and waits, with a timeout, for every rank.

Each worker sends one JSON line (rank, world size, pid, the layout of its KV cache shard and,
for GPU memory, CUDA IPC handles) and gets one JSON line back. The connection stays open while
the worker lives: a second worker claiming a live rank is refused, and a worker that exits is
deregistered (nothing is offered or loaded until its rank registers again).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from typing import Dict, List, Optional

from ... import _errors
from ...cuda_ipc import CudaIpcHandle
from ...manager import KVLayer
from . import _log

PROTOCOL = 1
DEFAULT_TIMEOUT_S = 120.0  # FlexKV's client socket timeout
DUPLICATE_RETRY_S = 0.5  # first wait of a worker whose rank is still held (a predecessor exiting); doubles to 4 s


def socket_path(engine_id: str, override: Optional[str] = None, dp_rank: Optional[int] = None) -> str:
    """Where the scheduler of data-parallel rank ``dp_rank`` listens (each DP rank has its own)."""
    from ._deployment import per_dp_rank_path

    if override:
        return per_dp_rank_path(override, dp_rank, directory=False)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    name = f"flexkv-{engine_id}" if dp_rank is None or engine_id.endswith(f"_dp{dp_rank}") else \
        f"flexkv-{engine_id}_dp{dp_rank}"
    return os.path.join(base, name + ".sock")


def timeout_from(extra: dict, env=None) -> float:
    """``registration_timeout_s`` of kv_connector_extra_config, else FLEXKV_REGISTRATION_TIMEOUT_S."""
    env = os.environ if env is None else env
    raw = extra.get("registration_timeout_s", env.get("FLEXKV_REGISTRATION_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0:
        raise _errors.ConfigError(f"registration_timeout_s must be a number of seconds > 0, got {raw!r}")
    return value


class RegistrationServer:
    """The scheduler side: registers each rank with ``manager`` (``register_rank``/``deregister_rank``)."""

    def __init__(self, path: str, world_size: int, manager) -> None:
        self.path, self.world_size, self._manager = path, world_size, manager
        self._lock = threading.Lock()   # one registration at a time: the duplicate check and the registration are atomic
        self._live: Dict[int, tuple] = {}  # rank -> (pid, connection) of its registered worker
        self._conns: set = set()          # open worker connections, closed by close()
        self._refused: Dict[int, str] = {}  # rank -> why its last registration was refused
        self.ready = threading.Event()
        if os.path.exists(path):
            os.unlink(path)  # a stale socket of a previous engine with the same id
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600
        try:
            self._sock.bind(path)
        except OSError as e:
            self._sock.close()
            raise _errors.ConfigError(
                f"FlexKv cannot listen for its workers on {path!r} ({e}); set registration_socket in "
                "kv_connector_extra_config to a path in a writable directory, under 108 bytes") from e
        finally:
            os.umask(old)
        self._sock.listen(world_size * 2)
        self._closed = False
        threading.Thread(target=self._accept, name="flexkv-registration", daemon=True).start()

    def holder(self, rank: int) -> Optional[int]:
        """The pid of the worker registered for ``rank``, if any."""
        with self._lock:
            live = self._live.get(rank)
        return live[0] if live else None

    def missing(self) -> List[int]:
        with self._lock:
            return self._missing()

    def _missing(self) -> List[int]:  # caller holds the lock
        return [r for r in range(self.world_size) if r not in self._live]

    def wait_ready(self, timeout_s: float) -> None:
        """Waits for every rank; raises InvalidStateError naming the missing ones, at once if
        each missing rank was refused (a configuration error does not fix itself)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            with self._lock:
                missing = self._missing()
                refused = {r: self._refused[r] for r in missing if r in self._refused}
            if missing and len(refused) == len(missing):
                raise _errors.InvalidStateError(
                    "FlexKv: the KV cache registration of rank(s) " +
                    "; ".join(f"{r} was refused: {why}" for r, why in refused.items()) +
                    "; nothing is loaded from or saved to the cache")
            if time.monotonic() >= deadline:
                raise _errors.InvalidStateError(
                    f"FlexKv: rank(s) {missing} of {self.world_size} did not register their KV cache within "
                    f"{timeout_s:.0f} s on {self.path}; until they do, nothing is loaded from or saved to the cache")

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="flexkv-registration-rank", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            with conn, conn.makefile("rwb") as f:
                msg: dict = {}
                try:
                    msg = json.loads(f.readline() or b"{}")
                    rank = self._register(msg, conn)
                except Exception as e:  # a bad registration is answered and logged, never raised here
                    _log.logger.log(logging.WARNING if isinstance(e, RankTaken) else logging.ERROR,
                                    "FlexKv: refused a worker's registration: %s", e)
                    if isinstance(msg, dict) and isinstance(msg.get("rank"), int) and not isinstance(e, RankTaken):
                        with self._lock:  # a refused duplicate is retried by its worker: not a final answer
                            self._refused[msg["rank"]] = str(e)
                    _answer(f, {"ok": False, "error": str(e), "taken": isinstance(e, RankTaken)})
                    return
                try:
                    _answer(f, {"ok": True, "complete": self.ready.is_set()})
                    f.read()  # blocks until the worker's end closes: it exited
                except (OSError, ValueError):
                    pass  # the worker went away mid-answer: it exited all the same
                finally:
                    self._deregister(rank, conn)
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _register(self, msg: dict, conn: socket.socket) -> int:
        if msg.get("protocol") != PROTOCOL:
            raise _errors.InvalidArgumentError(f"registration protocol {msg.get('protocol')}, expected {PROTOCOL}")
        rank, world, pid = int(msg["rank"]), int(msg["world_size"]), int(msg["pid"])
        if world != self.world_size:
            raise _errors.InvalidArgumentError(f"rank {rank} says the world size is {world}, the scheduler {self.world_size}")
        if not 0 <= rank < world:
            raise _errors.InvalidArgumentError(f"rank {rank} is outside 0..{world - 1}")
        layers = [KVLayer(*l) for l in msg["layers"]]
        ipc = [CudaIpcHandle.from_json(h) for h in msg["cuda_ipc"]] if msg.get("memory") == "cuda" else None
        with self._lock:
            old = self._live.get(rank, (None, None))[0]
            if old is not None and old != pid and _alive(old):
                raise RankTaken(
                    f"rank {rank} is already registered by the worker with pid {old}, which is still "
                    f"running; pid {pid} claims the same rank (check each worker's tensor-parallel rank)")
            # A dead holder whose connection has not been seen closing yet (or the same process
            # registering again): the newcomer replaces it.
            complete = self._manager.register_rank(rank, world, pid, layers, int(msg["num_blocks"]), cuda_ipc=ipc)
            self._live[rank] = (pid, conn)
            self._refused.pop(rank, None)
            if complete:
                self.ready.set()
        _log.logger.info("FlexKv: rank %d (pid %d) registered its KV cache shard; %s", rank, pid,
                         "all ranks are in" if complete else f"waiting for ranks {self.missing()}")
        return rank

    def _deregister(self, rank: int, conn: socket.socket) -> None:
        with self._lock:
            live = self._live.get(rank)
            if live is None or live[1] is not conn:
                return  # already replaced (a restarted worker, or the same one registering again)
            pid = live[0]
            del self._live[rank]
            self.ready.clear()
            try:
                self._manager.deregister_rank(rank)
            except _errors.FlexKVError:
                return  # the engine is shutting down
        if not self._closed:
            _log.logger.warning("FlexKv: the worker of rank %d (pid %d) disconnected; the cache is unused until it "
                                "registers again", rank, pid)

    def close(self) -> None:
        """Stops listening and drops the workers' connections (their threads then end)."""
        self._closed = True
        with self._lock:
            conns = list(self._conns)
        for c in [self._sock, *conns]:
            try:
                c.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept() or read()
            except OSError:
                pass
            c.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class RankTaken(_errors.InvalidArgumentError):
    """A live worker holds the rank; the refused worker retries, as its predecessor may be exiting."""


def _answer(f, reply: dict) -> None:
    try:
        f.write((json.dumps(reply) + "\n").encode())
        f.flush()
    except (OSError, ValueError):
        pass  # the worker is gone; its end of the story is the closed connection


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


class RegistrationClient:
    """The worker side: registers in the background (the scheduler may not exist yet) and keeps
    the connection open for as long as the worker lives."""

    def __init__(self, path: str, rank: int, world_size: int, layers, num_blocks: int,
                 cuda_ipc: Optional[List[CudaIpcHandle]] = None, warn_after_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path, self.rank = path, rank
        msg = {"protocol": PROTOCOL, "rank": rank, "world_size": world_size, "pid": os.getpid(),
               "num_blocks": num_blocks, "memory": "cuda" if cuda_ipc is not None else "host",
               "layers": [[l.base, l.block_stride, l.span_bytes, l.kv_stride, l.num_kv] for l in layers]}
        if cuda_ipc is not None:
            msg["cuda_ipc"] = [h.to_json() for h in cuda_ipc]
        self._message = (json.dumps(msg) + "\n").encode()
        self._warn_after_s = warn_after_s
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._closed = False
        self.error: Optional[str] = None
        self.done = threading.Event()
        threading.Thread(target=self._run, name=f"flexkv-register-rank{rank}", daemon=True).start()

    def wait(self, timeout_s: float) -> None:
        """For tests and tools: waits for the answer; raises if refused or not answered in time."""
        if not self.done.wait(timeout_s):
            raise _errors.InvalidStateError(f"FlexKv: rank {self.rank} got no answer from {self.path} in {timeout_s:.0f} s")
        if self.error is not None:
            raise _errors.InvalidArgumentError(self.error)

    def _connect(self) -> Optional[socket.socket]:
        start, delay, warned = time.monotonic(), 0.05, False
        while not self._closed:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                return s
            except OSError:
                s.close()
            if not warned and time.monotonic() - start > self._warn_after_s:
                warned = True
                _log.logger.warning("FlexKv: rank %d still waits for the scheduler to listen on %s", self.rank, self.path)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    def _run(self) -> None:
        start, delay = time.monotonic(), DUPLICATE_RETRY_S
        while True:
            s = self._connect()
            if s is None:
                break
            try:
                s.sendall(self._message)
                reply = json.loads(s.makefile("rb").readline() or b'{"ok": false, "error": "the scheduler closed the connection"}')
            except (OSError, ValueError) as e:
                reply = {"ok": False, "error": f"the registration failed: {e}"}
            if reply.get("ok"):
                with self._lock:
                    if not self._closed:
                        self._sock = s  # kept open: its closing tells the scheduler this worker exited
                        s = None
                if s is not None:
                    s.close()  # closed meanwhile: the scheduler deregisters the rank at once
                _log.logger.info("FlexKv: rank %d registered its KV cache shard", self.rank)
                break
            s.close()
            # A rank still held may belong to a predecessor that is exiting (a dying GPU worker
            # can take a while): retry for as long as the scheduler waits for ranks by default.
            if reply.get("taken") and time.monotonic() - start < self._warn_after_s and not self._closed:
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            self.error = f"FlexKv refused the registration of rank {self.rank}: {reply.get('error')}"
            _log.logger.error("%s", self.error)
            break
        self.done.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
