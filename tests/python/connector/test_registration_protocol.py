"""The registration socket's protocol, with a recording stand-in for the engine: duplicates,
stale ranks of dead workers, disconnects and closing. Registrations come from this process
(the scheduler's own) or from small child processes (registration_child.py), since the server
believes a registration only from the process it names."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

import flexkv
from flexkv.integration.vllm._registration import RegistrationClient, RegistrationServer

from .registration_support import LAYER, ChildWorker, RecordingEngine, message, register
from .waiting import wait_for

KV_LAYER = flexkv.KVLayer(*LAYER)  # anonymous memory of this process


def raw_register(path: str, rank: int) -> tuple[socket.socket, dict]:
    """Registers ``rank`` from this process (the scheduler's own, which may register)."""
    return register(path, rank)


@pytest.fixture
def server(tmp_path):
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine)
    yield srv, engine
    srv.close()


def test_a_live_rank_is_not_taken_over_but_a_dead_holders_rank_is(server):
    srv, engine = server
    me = os.getpid()
    a, reply = raw_register(srv.path, 0)
    assert reply["ok"] and not reply["complete"]
    twin = ChildWorker(srv.path, 0)  # same rank while its (live) holder runs
    reply = twin.reply
    twin.exit()
    assert not reply["ok"] and reply["taken"] and "already registered" in reply["error"]
    b, reply = raw_register(srv.path, 0)  # the holder itself registering again replaces itself
    assert reply["ok"] and engine.ranks == {0: me}
    a.close()  # its first connection closing later does not drop the new registration
    time.sleep(0.2)
    assert srv.holder(0) == me and ("deregister", 0) not in engine.calls
    # Rank 1's first holder died before its connection was seen closing (a child of its own
    # still holds it): its successor replaces it.
    gone = ChildWorker(srv.path, 1, orphan_holder=True)
    assert gone.reply["ok"] and srv.ready.is_set()
    c, reply = raw_register(srv.path, 1)
    assert reply["ok"] and srv.ready.is_set() and engine.ranks == {0: me, 1: me}
    gone.exit()  # the dead holder's connection closes late: the successor keeps the rank
    time.sleep(0.2)
    assert engine.ranks == {0: me, 1: me} and srv.ready.is_set()
    for s in (b, c):
        s.close()


def test_a_closed_connection_deregisters_its_rank(server):
    srv, engine = server
    a, _ = raw_register(srv.path, 0)
    b, _ = raw_register(srv.path, 1)
    assert srv.ready.is_set()
    b.close()
    assert wait_for(lambda: ("deregister", 1) in engine.calls)
    assert not srv.ready.is_set() and srv.missing() == [1]
    a.close()


def test_bad_messages_are_answered_and_the_server_keeps_serving(server):
    srv, engine = server
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(srv.path)
    s.sendall(b"not json\n")
    assert json.loads(s.makefile("rb").readline())["ok"] is False
    s.close()
    _, reply = raw_register(srv.path, 5)
    assert not reply["ok"] and "outside 0..1" in reply["error"]
    a, reply = raw_register(srv.path, 0)
    assert reply["ok"]
    a.close()


def test_close_ends_the_servers_threads_and_the_client_waits_for_a_scheduler(tmp_path):
    path = str(tmp_path / "late.sock")
    before = threading.active_count()
    client = RegistrationClient(path, 0, 2, [KV_LAYER], 8)  # no scheduler yet: it keeps trying
    time.sleep(0.3)
    assert not client.done.is_set()
    engine = RecordingEngine(2)
    srv = RegistrationServer(path, 2, engine)
    client.wait(10)
    assert engine.ranks == {0: os.getpid()}
    srv.close()
    client.close()
    assert wait_for(lambda: threading.active_count() <= before)
    assert not os.path.exists(path)


def test_waiting_ends_at_once_when_every_missing_rank_was_refused(server):
    srv, engine = server
    a, _ = raw_register(srv.path, 0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(srv.path)
    s.sendall((json.dumps(message(1, world=4, layers=[])) + "\n").encode())
    assert json.loads(s.makefile("rb").readline())["ok"] is False
    start = time.monotonic()
    with pytest.raises(flexkv.InvalidStateError, match=r"rank\(s\) 1 was refused: rank 1 says the world size is 4"):
        srv.wait_ready(30)
    assert time.monotonic() - start < 5
    a.close()
    s.close()


def test_a_socket_path_that_cannot_be_bound_is_a_config_error(tmp_path):
    with pytest.raises(flexkv.ConfigError, match="registration_socket"):
        RegistrationServer(str(tmp_path / ("x" * 120)), 2, RecordingEngine(2))
    with pytest.raises(flexkv.ConfigError, match="registration_socket"):
        RegistrationServer(str(tmp_path / "no" / "such" / "dir.sock"), 2, RecordingEngine(2))
