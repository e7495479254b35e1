"""Registration of workers in other processes (TP > 1, multiprocess executor) over a Unix socket.

vLLM's workers register their KV caches *before* the scheduler (and so the engine) exists: the
engine-core process waits for that step before it builds the scheduler. So a worker never
blocks on the engine: it hands its registration to a background thread that connects as soon
as the scheduler listens. The scheduler listens on a socket named after the engine id (in
``$XDG_RUNTIME_DIR``, else the temp dir; mode 0600) and waits, with a timeout, for every rank.

Each worker sends one JSON line (rank, world size, pid, the layout of its KV cache shard and,
for GPU memory, CUDA IPC handles; see ``_registration_message``) and gets one JSON line back.
The connection stays open while the worker lives: a second worker claiming a live rank is
refused, and a worker that exits is deregistered (nothing is offered or loaded until its rank
registers again).

Anything on this machine running as the same user can connect, so a line is untrusted until
checked: it must come from the process it names, a descendant of the scheduler's (``_peer``);
every field is checked (``_registration_message``); host memory must be anonymous or shared
writable memory of that process (``_process_memory``). One thread serves every connection
(a selector): a connection costs no thread, a line is read only up to its size limit, and a
connection that sends no line within the read timeout is answered and closed.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import tempfile
import threading
import time
from typing import Dict, List, Optional

from ... import _errors
from ...cuda_ipc import CudaIpcHandle
from . import _log, _peer, _process_memory
from ._registration_message import MAX_LAYERS, MAX_LINE, PROTOCOL, Registration, decode, line_limit, pid_of
from ._registration_message import rank_of, validate

__all__ = ["PROTOCOL", "MAX_LAYERS", "MAX_LINE", "line_limit", "RegistrationServer", "RegistrationClient",
           "RankTaken", "socket_path", "timeout_from"]

DEFAULT_TIMEOUT_S = 120.0  # FlexKV's client socket timeout
DUPLICATE_RETRY_S = 0.5  # first wait of a worker whose rank is still held (a predecessor exiting); doubles to 4 s
READ_TIMEOUT_S = 10.0  # a worker sends its line as soon as it connects; one that sends nothing is dropped
MAX_PENDING = 64  # connections that have not sent their line yet; more are told to retry
_CHUNK = 65536


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


class _Pending:
    """A connection that has not sent its line yet."""

    __slots__ = ("data", "deadline")

    def __init__(self, deadline: float) -> None:
        self.data, self.deadline = bytearray(), deadline


class RegistrationServer:
    """The scheduler side: registers each rank with ``manager`` (``register_rank``/``deregister_rank``).

    ``scheduler_pid``: the process whose descendants may register (this one by default);
    ``read_timeout_s``: how long a connection may take to send its line; ``max_pending``: how
    many connections may be waiting to send it at once."""

    def __init__(self, path: str, world_size: int, manager, *, scheduler_pid: Optional[int] = None,
                 read_timeout_s: float = READ_TIMEOUT_S, max_pending: int = MAX_PENDING) -> None:
        self.path, self.world_size, self._manager = path, world_size, manager
        self._scheduler_pid = os.getpid() if scheduler_pid is None else scheduler_pid
        self._read_timeout_s, self._max_pending = read_timeout_s, max_pending
        self._lock = threading.Lock()   # guards _live, _refused and the engine's registration calls
        self._live: Dict[int, tuple] = {}  # rank -> (pid, connection) of its registered worker
        self._refused: Dict[int, str] = {}  # rank -> why its last registration was refused
        self._pending: Dict[socket.socket, _Pending] = {}  # only the serving thread touches these two
        self._registered: Dict[socket.socket, int] = {}  # connection -> its rank
        self._noise = _log.Throttle()  # refusals of connections that are not (yet) known workers
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
        self._sock.listen(max(world_size * 2, 128))
        self._sock.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()  # close() wakes the serving thread through it
        self._wake_r.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._sock, selectors.EVENT_READ, self._on_connect)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="flexkv-registration", daemon=True)
        self._thread.start()

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

    # ---- the serving thread -------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._closed:
                now = time.monotonic()
                wait = min((p.deadline for p in self._pending.values()), default=now + 3600) - now
                for key, _ in self._sel.select(max(0.0, wait)):
                    if key.data is None:
                        continue  # woken by close()
                    try:
                        key.data(key.fileobj)
                    except Exception as e:  # a defect here must not stop the registration of every rank
                        _log.logger.error("FlexKv: dropped a registration connection after an unexpected error: %s", e)
                        if key.fileobj is not self._sock:
                            self._drop(key.fileobj)
                self._expire()
        finally:
            self._close_all()

    def _on_connect(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, say: those waiting are served meanwhile
                self._noise.log(logging.WARNING, "FlexKv: the registration socket could not accept a connection: %s", e)
                time.sleep(0.05)  # the listener stays readable: without a pause this loop would spin
                return
            conn.setblocking(False)
            if len(self._pending) >= self._max_pending:
                self._noise.log(logging.WARNING, "FlexKv: refused a registration connection: %d others are waiting",
                                len(self._pending))
                _answer(conn, {"ok": False, "retry": True, "taken": False,
                               "error": f"too many connections ({len(self._pending)}) are waiting to register; "
                                        "try again"})
                conn.close()
                continue
            self._pending[conn] = _Pending(time.monotonic() + self._read_timeout_s)
            self._sel.register(conn, selectors.EVENT_READ, self._on_line_data)

    def _on_line_data(self, conn: socket.socket) -> None:
        pending = self._pending[conn]
        try:
            chunk = conn.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        end = chunk.find(b"\n")
        if chunk and end < 0 and len(pending.data) + len(chunk) <= MAX_LINE:
            pending.data += chunk
            return
        line = bytes(pending.data) + (chunk[:end] if end >= 0 else chunk)
        self._forget(conn)
        if len(line) > MAX_LINE:
            self._refuse_noise(conn, f"the registration is longer than {MAX_LINE} bytes (the most {MAX_LAYERS} "
                                     "layers need)")
        elif not line and not chunk:
            conn.close()  # gone without a word: nothing to answer
        else:
            self._handle(conn, line)  # a line, or what came before the client ended its side

    def _on_registered_data(self, conn: socket.socket) -> None:
        try:
            if conn.recv(_CHUNK):
                return  # a registered worker has nothing more to say: ignored
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        rank = self._registered.pop(conn)
        self._sel.unregister(conn)
        conn.close()
        self._deregister(rank, conn)  # the worker exited

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c, p in self._pending.items() if p.deadline <= now]:
            self._forget(conn)
            self._refuse_noise(conn, f"sent no registration within {self._read_timeout_s:g} s")

    def _forget(self, conn: socket.socket) -> None:
        del self._pending[conn]
        self._sel.unregister(conn)

    def _drop(self, conn) -> None:
        """Closes a connection in whatever state, deregistering its rank if it had one."""
        if conn in self._pending:
            self._forget(conn)
        elif conn in self._registered:
            rank = self._registered.pop(conn)
            self._sel.unregister(conn)
            self._deregister(rank, conn)
        conn.close()

    def _refuse_noise(self, conn: socket.socket, why: str) -> None:
        self._noise.log(logging.WARNING, "FlexKv: refused a registration: %s", why)
        _answer(conn, {"ok": False, "error": why, "taken": False})
        conn.close()

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        """Checks and registers one line; the connection is kept while its worker lives."""
        try:
            msg = decode(line)
            _peer.check(conn, pid_of(msg), self._scheduler_pid)
        except _errors.FlexKVError as e:
            self._refuse_noise(conn, str(e))  # not known to be one of our workers: says nothing about a rank
            return
        try:
            reg = validate(msg, self.world_size, len(line))
            if reg.cuda_ipc is None:  # device pointers of CUDA memory are not in /proc/PID/maps
                from ._worker import extent

                _process_memory.check_ranges(reg.pid, [(f"layer {i}", *extent(l, reg.num_blocks))
                                                       for i, l in enumerate(reg.layers)])
            complete = self._register(reg, conn)
        except Exception as e:  # a worker's registration refused: answered and logged, never raised here
            taken = isinstance(e, RankTaken)
            why = str(e) if isinstance(e, _errors.FlexKVError) else f"the engine could not register the shard ({e})"
            _log.logger.log(logging.WARNING if taken else logging.ERROR, "FlexKv: refused a worker's registration: %s",
                            why)
            rank = rank_of(msg, self.world_size)
            if rank is not None and not taken:
                with self._lock:  # a refused duplicate is retried by its worker: not a final answer
                    self._refused[rank] = why
            _answer(conn, {"ok": False, "error": why, "taken": taken})
            conn.close()
            return
        if not _answer(conn, {"ok": True, "complete": complete}):
            self._deregister(reg.rank, conn)  # gone before it heard the answer: it exited all the same
            conn.close()
            return
        self._registered[conn] = reg.rank
        self._sel.register(conn, selectors.EVENT_READ, self._on_registered_data)
        _log.logger.info("FlexKv: rank %d (pid %d) registered its KV cache shard; %s", reg.rank, reg.pid,
                         "all ranks are in" if complete else f"waiting for ranks {self.missing()}")

    def _register(self, reg: Registration, conn: socket.socket) -> bool:
        with self._lock:
            old = self._live.get(reg.rank, (None, None))[0]
            if old is not None and old != reg.pid and _alive(old):
                raise RankTaken(
                    f"rank {reg.rank} is already registered by the worker with pid {old}, which is still "
                    f"running; pid {reg.pid} claims the same rank (check each worker's tensor-parallel rank)")
            # A dead holder whose connection has not been seen closing yet (or the same process
            # registering again): the newcomer replaces it.
            complete = self._manager.register_rank(reg.rank, reg.world_size, reg.pid, reg.layers, reg.num_blocks,
                                                   cuda_ipc=reg.cuda_ipc)
            self._live[reg.rank] = (reg.pid, conn)
            self._refused.pop(reg.rank, None)
            if complete:
                self.ready.set()
            return bool(complete)

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

    def _close_all(self) -> None:
        for conn in list(self._pending) + list(self._registered):
            self._drop(conn)
        for s in (self._sock, self._wake_r):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self._sel.close()

    def close(self) -> None:
        """Stops listening, drops the workers' connections (deregistering their ranks) and ends
        the serving thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(30)
        self._wake_w.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class RankTaken(_errors.InvalidArgumentError):
    """A live worker holds the rank; the refused worker retries, as its predecessor may be exiting."""


def _answer(conn: socket.socket, reply: dict) -> bool:
    """Sends one line (a few hundred bytes: it fits the empty socket buffer of a fresh
    connection, so a non-blocking send never waits); False if the worker is gone."""
    try:
        data = (json.dumps(reply) + "\n").encode()
        return conn.send(data) == len(data)
    except OSError:
        return False


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
            reply = self._exchange(s)
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
            # can take a while), and a scheduler flooded with connections asks to come back:
            # retry for as long as the scheduler waits for ranks by default.
            if (reply.get("taken") or reply.get("retry")) and time.monotonic() - start < self._warn_after_s and not self._closed:
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            self.error = f"FlexKv refused the registration of rank {self.rank}: {reply.get('error')}"
            _log.logger.error("%s", self.error)
            break
        self.done.set()

    def _exchange(self, s: socket.socket) -> dict:
        """Sends the line and reads the answer. A scheduler may answer (a refusal, "retry") and
        close before it read the whole line: sending then fails, but its answer is there to read."""
        sent_error: Optional[OSError] = None
        try:
            s.sendall(self._message)
        except OSError as e:
            sent_error = e
        try:
            line = s.makefile("rb").readline()
        except OSError as e:
            line, sent_error = b"", sent_error or e
        if not line:
            why = f"the registration failed: {sent_error}" if sent_error else "the scheduler closed the connection"
            return {"ok": False, "error": why}
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        return reply if isinstance(reply, dict) else {"ok": False, "error": "the scheduler's answer is not JSON"}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
