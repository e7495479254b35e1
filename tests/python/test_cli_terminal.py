"""Terminal habits: colour and progress only on a terminal, never with NO_COLOR or in a pipe."""

from __future__ import annotations

import io
import os
import pty
import sys

from conftest import REPO
from flexkv.cli import _term


def run_on_a_terminal(args, env_extra=None) -> bytes:
    pid, fd = pty.fork()
    if pid == 0:  # the child: a fresh interpreter, so nothing of this process's library state
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEXKV_") and k != "NO_COLOR"}
        env.update(PYTHONPATH=str(REPO / "python"), TERM="xterm", **(env_extra or {}))
        os.execve(sys.executable, [sys.executable, "-m", "flexkv", *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out


def test_check_is_coloured_on_a_terminal_unless_no_color():
    assert b"\x1b[32mok" in run_on_a_terminal(["check"])
    assert b"\x1b[" not in run_on_a_terminal(["check"], {"NO_COLOR": "1"})


def test_progress_waits_two_seconds_and_is_silent_off_a_terminal(monkeypatch):
    tty = io.StringIO()
    tty.isatty = lambda: True
    clock = [100.0]
    monkeypatch.setattr(_term.time, "monotonic", lambda: clock[0])
    with _term.Progress("work", stream=tty) as p:
        p.update(0.1, "early")
        assert tty.getvalue() == ""  # under two seconds: nothing
        clock[0] += 2.5
        p.update(0.5, "half")
        assert "work:  50.0% half (2 s)" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[K")  # the line is cleared at the end
    pipe = io.StringIO()
    with _term.Progress("work", stream=pipe) as p:
        clock[0] += 10
        p.update(0.9, "late")
    assert pipe.getvalue() == ""
