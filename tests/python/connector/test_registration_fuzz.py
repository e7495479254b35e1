"""A seeded fuzz run of the registration socket: a few hundred malformed and adversarial
messages (truncated JSON, wrong types, huge and negative numbers, deep nesting, binary
garbage, lines longer than any registration, idle and half-sent connections, pids of other
processes, a sender the scheduler did not start, addresses inside this process's libraries).
Every answer must be a refusal in plain words, nothing may reach the engine, the server must
keep serving without growing its threads, and a good worker still registers afterwards."""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest

from flexkv.integration.vllm._registration import MAX_LINE, RegistrationServer

from .registration_support import ChildWorker, RecordingEngine, connect, message, read_reply
from .waiting import wait_for

SEED = 20240611
NUM_CASES = 320
# What a Python exception's text looks like; a refusal must read as a sentence instead.
PYTHONIC = re.compile(r"^'[^']*'$|object has no attribute|Traceback|invalid literal|unhashable|NoneType|"
                      r"not subscriptable|index out of range|Error\b|object is not|positional|keyword argument")


class GuardedBuffer:
    """Writable pages between two inaccessible ones, so that any layer reaching outside the
    buffer (a negative kv_stride, a stride too large) is refused deterministically."""

    def __init__(self, pages: int = 16) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self._libc, page = libc, os.sysconf("SC_PAGE_SIZE")
        self._size = (pages + 2) * page
        self._addr = libc.mmap(None, self._size, 0, 0x22, -1, 0)  # PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS
        assert self._addr not in (None, 2 ** 64 - 1)
        assert libc.mprotect(self._addr + page, pages * page, 3) == 0  # the middle: PROT_READ | PROT_WRITE
        self.base, self.size = self._addr + page, pages * page

    def close(self) -> None:
        self._libc.munmap(self._addr, self._size)


def library_mappings():
    """(lo, hi) of this process's file mappings of shared libraries (code and data)."""
    out = []
    for line in open("/proc/self/maps"):
        f = line.split(maxsplit=5)
        if len(f) == 6 and ".so" in f[5]:
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if hi - lo >= 8192:
                out.append((lo, hi))
    return out


INT_FIELDS = ["protocol", "rank", "world_size", "pid", "num_blocks"]
HUGE = [10 ** 30, 2 ** 63, 2 ** 64, 2 ** 64 + 1, 2 ** 31, -2 ** 63 - 1, 10 ** 39, -10 ** 39]


def weird_value(rng: random.Random):
    return rng.choice(["", "8", "x" * rng.randrange(1, 3000), 1.5, 8.0, -0.0, None, True, False, [], [1, 2],
                       {}, {"a": [1, {"b": None}]}, [[[[]]]], "\u00e9\u4e2d\ud7ff", 1e300])


class Fuzzer:
    def __init__(self, rng: random.Random, buf: GuardedBuffer, sleeper_pid: int) -> None:
        self.rng, self.buf, self.sleeper_pid = rng, buf, sleeper_pid
        self.libs = library_mappings()

    def good(self, **fields) -> dict:
        return message(0, **{"layers": [[self.buf.base, 256, 128, 128, 2]], **fields})

    def case(self):
        """(kind, data): kind "line" expects a refusal, "partial" expects none (it hangs up)."""
        rng, kind = self.rng, self.rng.randrange(13)
        if kind == 0:  # truncated JSON
            text = json.dumps(self.good())
            return "line", text[: rng.randrange(1, len(text) - 1)].encode() + b"\n"
        if kind == 1:  # a top-level field of the wrong type
            msg = self.good()
            msg[rng.choice(list(msg))] = weird_value(rng)
            return "line", line(msg)
        if kind == 2:  # huge or negative numbers in a top-level field
            msg = self.good()
            msg[rng.choice(INT_FIELDS)] = rng.choice(HUGE + [-rng.randrange(1, 2 ** 40)])
            return "line", line(msg)
        if kind == 3:  # a layer field out of range or of the wrong type
            msg = self.good()
            i = rng.randrange(5)
            if i == 0:  # a base no user-space mapping can hold (user space ends at 2**47)
                value = rng.choice([0, -1, 2 ** 47 + rng.randrange(2 ** 40), 2 ** 63, 2 ** 64, weird_value(rng)])
            else:  # with base at the buffer's first byte, any of these reaches outside it or out of range
                value = rng.choice(HUGE + [weird_value(rng), -rng.randrange(1, 2 ** 20)])
            msg["layers"][0][i] = value
            return "line", line(msg)
        if kind == 4:  # deep nesting
            opener = rng.choice([b"[", b'{"a":', b'{"layers":['])
            return "line", opener * rng.randrange(500, 60_000) + b"\n"
        if kind == 5:  # binary garbage, often invalid UTF-8
            return "line", rng.randbytes(rng.randrange(1, 2000)).replace(b"\n", b" ") + b"\n"
        if kind == 6:  # another process's pid (an ancestor, init, a sibling, anything)
            pid = rng.choice([os.getppid(), 1, self.sleeper_pid, rng.randrange(2, 1 << 22)])
            return "line", line(self.good(pid=pid if pid != os.getpid() else 1))
        if kind == 7:  # addresses inside this process's libraries (code, data, read-only data)
            lo, hi = rng.choice(self.libs)
            base = rng.randrange(lo, hi - 4096) & ~0xFFF
            return "line", line(self.good(layers=[[base, 256, 128, 128, 2]]))
        if kind == 8:  # layers of the wrong shape or count
            return "line", line(self.good(layers=rng.choice([
                [], [[self.buf.base, 256, 128, 128]], [[self.buf.base, 256, 128, 128, 2, 0]], [self.buf.base],
                [[self.buf.base, 256, 128, 128, 2]] * rng.randrange(1025, 1100), {"0": 1}, "layers",
                [[self.buf.base, 2 ** 62, 2 ** 62, 2 ** 62, 2]] * 2 + [[self.buf.base, 4096, 4096, 0, 1]]])))
        if kind == 9:  # CUDA handles that are not handles
            ipc = rng.choice([None, [], "ab" * 64, [["zz" * 64, 0, "0000:3b:00.0"]], [["ab" * 63, 0, "0"]],
                              [["ab" * 64, -1, "0000:3b:00.0"]], [["ab" * 64, 0, ""]], [["ab" * 64, 0, "\x00" * 8]],
                              [["ab" * 64, 0, "0000:3b:00.0"]] * 3, [[1, 2, 3]]])
            return "line", line(self.good(memory="cuda", cuda_ipc=ipc))
        if kind == 10:  # unknown fields, another protocol, an unknown memory kind
            return "line", line(self.good(**rng.choice([{"extra": 1}, {"protocol": 2}, {"protocol": "1"},
                                                        {"memory": "gpu"}, {"cuda_ipc": []}, {"__proto__": {}}])))
        if kind == 11:  # a half-sent message, then the client hangs up
            return "partial", json.dumps(self.good()).encode()[: rng.randrange(0, 80)]
        # a line of nothing but valid-looking JSON padding, longer than any registration
        pad = rng.choice([MAX_LINE + 1, MAX_LINE * 2, 5 << 20])
        return "line", b'{"rank": 0, "pad": "' + b"a" * pad + b'"}\n'


def line(msg) -> bytes:
    return (json.dumps(msg) + "\n").encode()


def assert_plain_refusal(reply, case: bytes) -> None:
    assert reply is not None, f"no answer to {case[:120]!r}"
    assert reply["ok"] is False, f"accepted {case[:120]!r}"
    err = reply["error"]
    assert isinstance(err, str) and 10 < len(err) < 400, err
    assert not PYTHONIC.search(err), f"{err!r} answering {case[:120]!r}"


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield p
    p.stdin.close()
    p.wait(10)


def test_the_registration_socket_survives_a_seeded_fuzz_run(tmp_path, sleeper, capfd):
    engine, foreign_engine = RecordingEngine(2), RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine, read_timeout_s=0.3)
    # A scheduler running as `sleeper`: this process did not come from it.
    foreign = RegistrationServer(str(tmp_path / "f.sock"), 2, foreign_engine, scheduler_pid=sleeper.pid)
    buf = GuardedBuffer()
    threads = threading.active_count()
    rng = random.Random(SEED)
    fuzz = Fuzzer(rng, buf, sleeper.pid)
    start, counts = time.monotonic(), {"line": 0, "partial": 0, "idle": 0, "foreign": 0}
    try:
        for n in range(NUM_CASES):
            kind, data = fuzz.case()
            s = connect(srv.path)
            try:
                s.sendall(data)
            except OSError:
                pass  # refused (and closed) before it read everything: the answer is still there
            if kind == "partial":
                s.close()
            else:
                assert_plain_refusal(read_reply(s), data)
                s.close()
            counts[kind] += 1
            if n % 40 == 0:
                # Idle connections: each is answered and closed when its read timeout is up.
                idle = [connect(srv.path) for _ in range(rng.randrange(5, 30))]
                for c in idle:
                    assert_plain_refusal(read_reply(c), b"(idle)")
                    c.close()
                counts["idle"] += len(idle)
                # A well-formed registration from a process the foreign scheduler did not start.
                s = connect(foreign.path)
                s.sendall(line(fuzz.good()))
                reply = read_reply(s)
                s.close()
                assert_plain_refusal(reply, b"(foreign)")
                assert "was not started by the scheduler's process" in reply["error"]
                counts["foreign"] += 1
                assert threading.active_count() <= threads
        assert engine.calls == [] and foreign_engine.calls == []
        # Still serving: this process and a child register both ranks.
        s = connect(srv.path)
        s.sendall(line(fuzz.good()))
        assert read_reply(s) == {"ok": True, "complete": False}
        worker = ChildWorker(srv.path, 1)
        assert worker.reply == {"ok": True, "complete": True} and srv.ready.is_set()
        worker.exit()
        assert wait_for(lambda: ("deregister", 1) in engine.calls, 10)
        s.close()
        assert threading.active_count() <= threads
    finally:
        srv.close()
        foreign.close()
        buf.close()
    elapsed = time.monotonic() - start
    err = capfd.readouterr().err
    print(f"registration fuzz: seed {SEED}, {sum(counts.values())} connections {counts}, {elapsed:.1f} s")
    assert elapsed < 30
    assert "Traceback" not in err and "Exception in thread" not in err
