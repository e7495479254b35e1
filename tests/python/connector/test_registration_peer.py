"""Who may register: only the process a registration names (the socket's SO_PEERCRED pid),
and only the scheduler's process or one it started (vLLM's workers are its children). The
engine reads and writes the registered process's memory, so a registration naming any other
process (the scheduler's parent, a process of another program) is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import flexkv
from flexkv.integration.vllm import _peer
from flexkv.integration.vllm._registration import RegistrationServer

from .registration_support import ChildWorker, RecordingEngine, register


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield p
    p.stdin.close()
    p.wait(10)


@pytest.fixture
def server(tmp_path):
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine)
    yield srv, engine
    srv.close()


def test_a_registration_naming_another_process_is_refused(server, sleeper):
    srv, engine = server
    for other in (os.getppid(), sleeper.pid, 1):  # a live ancestor, a live child, init
        s, reply = register(srv.path, 0, pid=other)
        s.close()
        assert reply["ok"] is False
        assert f"names pid {other}, but the connection comes from pid {os.getpid()}" in reply["error"]
    assert engine.calls == []


def test_a_process_the_scheduler_did_not_start_is_refused(tmp_path, sleeper):
    # A scheduler running as `sleeper`: this process is its sibling, not its child.
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine, scheduler_pid=sleeper.pid)
    try:
        s, reply = register(srv.path, 0)
        s.close()
        assert reply["ok"] is False
        assert f"pid {os.getpid()} was not started by the scheduler's process (pid {sleeper.pid})" in reply["error"]
        assert engine.calls == []
    finally:
        srv.close()


def test_a_child_of_the_scheduler_registers_its_own_memory(server):
    srv, engine = server
    w = ChildWorker(srv.path, 1)
    try:
        assert w.reply["ok"] is True
        assert engine.ranks == {1: w.pid}
    finally:
        w.exit()


def test_the_parent_chain_decides_who_descends_from_whom(sleeper):
    me = os.getpid()
    assert _peer.is_descendant(sleeper.pid, me)
    assert _peer.is_descendant(me, me)  # the scheduler's own process (its workers in-process)
    assert not _peer.is_descendant(me, sleeper.pid)
    assert not _peer.is_descendant(os.getppid(), me)
    assert not _peer.is_descendant(2 ** 22 + 1, me)  # no such process


def test_an_impostors_refusal_does_not_end_the_wait_for_its_rank(server):
    # A refused registration from a real worker ends the scheduler's wait (a configuration
    # error does not fix itself); one whose sender is not who it claims says nothing about the rank.
    srv, engine = server
    s, reply = register(srv.path, 1, pid=1, world=4)
    s.close()
    assert reply["ok"] is False
    a, _ = register(srv.path, 0)
    start = time.monotonic()
    with pytest.raises(flexkv.InvalidStateError, match=r"rank\(s\) \[1\] of 2 did not register"):
        srv.wait_ready(0.5)
    assert time.monotonic() - start >= 0.4
    a.close()
