"""Throwaway redis-server processes (single nodes and small clusters) for tests and benchmarks.

No pytest dependency, so benchmarks can import it too. Every server binds 127.0.0.1 only, on a
port chosen free at run time, keeps no data on disk (--save '' --appendonly no) and is stopped
by its own pid: nothing here touches a server it did not start.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
HOST = "127.0.0.1"
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
CLI_TIMEOUT_S = 10.0
# A cluster node also listens on port + 10000 (the cluster bus), so cluster ports must leave
# room for it: they are drawn from this range rather than from the kernel's ephemeral range.
CLUSTER_PORTS = (20000, 55000)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_port(cluster_bus: bool = False) -> int:
    """A TCP port on 127.0.0.1 that is free now (and, with cluster_bus, so is port + 10000).

    Another process may still take it before redis-server binds; RedisServer retries with a
    fresh port when it chose the port itself and the bind fails.
    """
    if not cluster_bus:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    for _ in range(200):  # bounded: a busy machine still has plenty of free pairs
        port = random.randint(*CLUSTER_PORTS)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError(f"no free port pair P, P+10000 found in {CLUSTER_PORTS}")


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _reap(proc: subprocess.Popen) -> None:
    """Last-resort cleanup (garbage collection or interpreter exit) for a server never stopped."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


class RedisServer:
    """One redis-server subprocess on 127.0.0.1; started by the constructor."""

    def __init__(self, port: int | None = None, password: str | None = None, maxmemory: str | int | None = None,
                 maxmemory_policy: str | None = None, cluster: bool = False, dir: str | None = None) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise FileNotFoundError(f"{REDIS_SERVER} not found: install redis-server (Debian package redis-server)")
        self.password, self.maxmemory, self.maxmemory_policy, self.cluster = password, maxmemory, maxmemory_policy, cluster
        self._own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="flexkv-redis-")
        self.proc: subprocess.Popen | None = None
        self._finalizer = None
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(cluster)
        try:
            self._start()
        except BaseException:
            self._cleanup_dir()
            raise

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, f"redis-{self.port}.log")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- commands ------------------------------------------------------------------------------

    def _cli_args(self) -> list[str]:
        args = [REDIS_CLI, "-h", HOST, "-p", str(self.port)]
        if self.password:
            args += ["-a", self.password, "--no-auth-warning"]
        return args

    def cli(self, *args: str) -> str:
        """Runs redis-cli against this server; returns its stdout, trailing newline removed.

        Error replies (e.g. NOAUTH) come back as text, as redis-cli exits 0 for them; only a
        failure to run or to connect raises.
        """
        r = subprocess.run(self._cli_args() + [str(a) for a in args], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(map(str, args))} on port {self.port} failed "
                               f"(rc {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout.rstrip("\n")

    # -- lifecycle -------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
               "--daemonize", "no", "--dir", self.dir]
        if self.password:
            cmd += ["--requirepass", self.password]
        if self.maxmemory is not None:
            cmd += ["--maxmemory", str(self.maxmemory)]
        if self.maxmemory_policy:
            cmd += ["--maxmemory-policy", self.maxmemory_policy]
        if self.cluster:
            cmd += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf",
                    "--cluster-node-timeout", "5000"]
        return cmd

    def _start(self) -> None:
        # A port we chose can be taken by someone else before redis binds it: retry with a fresh one.
        for attempt in range(3):
            try:
                self._start_once()
                return
            except RuntimeError as e:
                if self._fixed_port or attempt == 2 or "Address already in use" not in str(e):
                    raise
                self.port = free_port(self.cluster)

    def _start_once(self) -> None:
        os.makedirs(self.dir, exist_ok=True)  # stop() removes a temp dir it owns; restart() recreates it
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
        self._finalizer = weakref.finalize(self, _reap, self.proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"redis-server on port {self.port} exited with {rc} while starting; "
                                   f"log {self.log_path}:\n{_tail(self.log_path)}")
            try:
                last = self.cli("ping")
                if last == "PONG":
                    return
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                last = str(e)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {START_TIMEOUT_S} s "
                           f"(last: {last!r}); log {self.log_path}:\n{_tail(self.log_path)}")

    def _wait_or_kill(self) -> None:
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _forget(self) -> None:
        if self._finalizer:
            self._finalizer.detach()
        self.proc, self._finalizer = None, None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, the temp dir (and log) kept for restart()."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()
        self._forget()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, then wait for the pid (SIGKILL after 5 s); removes a temp dir it created."""
        if self.running():
            try:
                self.cli("shutdown", "nosave")  # the connection drops as the server exits: rc may vary
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            self._wait_or_kill()
        self._forget()
        self._cleanup_dir()

    def restart(self) -> None:
        """Starts the server again on the same port (stopping it first if it is running)."""
        if self.running():
            self.stop()
        self._fixed_port = True  # whoever holds .url expects the same port back
        self._start()

    def _cleanup_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.pid}, dir={self.dir!r})"


class RedisCluster:
    """A cluster of `nodes` masters (no replicas) on 127.0.0.1, ready (cluster_state:ok) once constructed."""

    READY_TIMEOUT_S = 15.0

    def __init__(self, nodes: int = 3, password: str | None = None) -> None:
        if nodes < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.dir = tempfile.mkdtemp(prefix="flexkv-redis-cluster-")
        self.password = password
        self.servers: list[RedisServer] = []
        try:
            for _ in range(nodes):
                # Each node keeps nodes-P.conf in the shared temp dir; the names differ by port.
                self.servers.append(RedisServer(password=password, cluster=True, dir=self.dir))
            self._create()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def _create(self) -> None:
        cmd = [REDIS_CLI, "--cluster", "create", *[f"{HOST}:{p}" for p in self.ports],
               "--cluster-replicas", "0", "--cluster-yes"]
        if self.password:
            cmd += ["-a", self.password, "--no-auth-warning"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed (rc {r.returncode}):\n{r.stdout}\n{r.stderr}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.READY_TIMEOUT_S
        while True:
            states = {s.port: self._state(s) for s in self.servers}
            if all(v == "ok" for v in states.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok within {self.READY_TIMEOUT_S} s: cluster_state by port {states}")
            time.sleep(0.1)

    @staticmethod
    def _state(server: RedisServer) -> str:
        for line in server.cli("cluster", "info").splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def cli(self, *args: str) -> str:
        """redis-cli -c (follows MOVED/ASK redirects) against the first node."""
        first = self.servers[0]
        r = subprocess.run(first._cli_args() + ["-c"] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli -c {' '.join(map(str, args))} failed: {r.stderr.strip()}")
        return r.stdout.rstrip("\n")

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        self.servers = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
