"""The registration socket's bounds: a message is at most a few KiB per layer (a longer line is
refused as soon as it is too long, so it never costs the scheduler memory), a connection that
sends nothing is closed after the read timeout, and however many connections wait, they cost
no threads. A client that disconnects or sends garbage leaves no traceback behind."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from flexkv.integration.vllm import _registration
from flexkv.integration.vllm._registration import RegistrationServer

from .registration_support import RecordingEngine, connect, message, read_reply, register, send_line
from .waiting import wait_for


@pytest.fixture
def server(tmp_path):
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine, read_timeout_s=0.5)
    yield srv, engine
    srv.close()


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024
    return 0


def test_a_512_mib_line_is_cut_off_early_and_costs_no_memory(server):
    srv, engine = server
    chunk = b" " * (1 << 20)
    before, sent = rss_bytes(), 0
    s = connect(srv.path)
    s.sendall(b'{"rank": 0, "pad": "')
    try:
        while sent < 512 << 20:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection: it stopped reading
    reply = read_reply(s)
    s.close()
    assert sent < 8 << 20, f"the server read {sent >> 20} MiB of one line"
    assert reply["ok"] is False and reply["error"].startswith("the registration is longer than")
    assert rss_bytes() - before < 32 << 20
    assert engine.calls == []


def test_a_line_longer_than_its_layers_need_is_refused(server):
    srv, _ = server
    msg = message()
    msg["memory"] = "host"
    data = json.dumps(msg).encode()
    padded = data[:-1] + b" " * (4096 + 512) + b"}\n"  # valid JSON, but 4.6 KiB more than one layer needs
    s, reply = send_line(srv.path, padded)
    s.close()
    assert reply["ok"] is False
    assert f"the registration is {len(padded) - 1} bytes long, more than the 4608 bytes of one with 1 layer" in reply["error"]


def test_idle_connections_are_closed_after_the_read_timeout_and_hold_no_threads(server):
    srv, engine = server
    before = threading.active_count()
    idle = [connect(srv.path) for _ in range(200)]
    assert threading.active_count() <= before
    start = time.monotonic()
    replies = [read_reply(s) for s in idle]  # each is answered and closed once its time is up
    assert time.monotonic() - start < 10
    answered = [r for r in replies if r is not None]
    assert answered and all(r["ok"] is False for r in answered)
    assert all("sent no registration within 0.5 s" in r["error"] or "too many connections" in r["error"]
               for r in answered)
    for s in idle:
        s.close()
    a, reply = register(srv.path, 0)  # the server still serves
    assert reply["ok"] is True
    a.close()
    assert threading.active_count() <= before


def test_a_partial_line_is_refused_when_its_time_is_up(server):
    srv, engine = server
    s = connect(srv.path)
    s.sendall(json.dumps(message()).encode())  # no newline: the client stalls mid-message
    reply = read_reply(s)
    s.close()
    assert reply["ok"] is False and "sent no registration within 0.5 s" in reply["error"]
    assert engine.calls == []


def test_too_many_waiting_connections_are_told_to_retry(tmp_path):
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, RecordingEngine(2), read_timeout_s=5, max_pending=4)
    try:
        idle = [connect(srv.path) for _ in range(4)]
        assert wait_for(lambda: len(srv._pending) == 4, 5)
        s, reply = register(srv.path, 0)
        assert reply["ok"] is False and reply["retry"] is True and "too many connections" in reply["error"]
        s.close()
        for c in idle:
            c.close()
        assert wait_for(lambda: not srv._pending, 5)
        s, reply = register(srv.path, 0)
        assert reply["ok"] is True
        s.close()
    finally:
        srv.close()


def test_disconnects_and_garbage_leave_no_traceback(server, capfd):
    srv, engine = server
    s = connect(srv.path)
    s.sendall(b'{"rank": 0, "wor')  # gone mid-message
    s.close()
    s = connect(srv.path)
    s.sendall(b"\x00\x01\x02\xff\n")
    s.close()  # gone before the answer
    s = connect(srv.path)
    s.sendall(b"x" * 4096)
    s.shutdown(socket.SHUT_WR)  # ended without a newline: what came is the message
    reply = read_reply(s)
    assert reply["ok"] is False and "not valid JSON" in reply["error"]
    s.close()
    a, reply = register(srv.path, 0)
    assert reply["ok"] is True
    a.close()
    b, reply = register(srv.path, 1)
    b.close()  # a registered worker disconnecting
    assert wait_for(lambda: ("deregister", 1) in engine.calls)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err


def test_the_message_limits_are_what_the_docs_say():
    assert _registration.line_limit(1) == 4096 + 512
    assert _registration.MAX_LINE == 4096 + 512 * _registration.MAX_LAYERS
    assert _registration.MAX_LINE < 1 << 20


def test_a_worker_told_to_retry_registers_once_a_place_is_free(tmp_path):
    from flexkv import KVLayer
    from flexkv.integration.vllm._registration import RegistrationClient

    from .registration_support import LAYER

    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine, read_timeout_s=1.0, max_pending=1)
    try:
        idle = connect(srv.path)
        assert wait_for(lambda: len(srv._pending) == 1, 5)
        client = RegistrationClient(srv.path, 0, 2, [KVLayer(*LAYER)], 8)  # told to retry until the idle one goes
        client.wait(15)
        assert 0 in engine.ranks
        idle.close()
        client.close()
    finally:
        srv.close()


def test_refusals_of_garbage_are_logged_a_few_times_only(server, caplog):
    srv, _ = server
    with caplog.at_level("WARNING", logger="flexkv"):
        for _ in range(50):
            s, reply = send_line(srv.path, b"garbage\n")
            s.close()
            assert reply["ok"] is False
    refusals = [r for r in caplog.records if "refused a registration" in r.getMessage()]
    assert 1 <= len(refusals) <= 10


def test_a_worker_answered_before_it_finished_sending_still_reads_the_answer(tmp_path):
    # A crowded scheduler answers "retry" and closes without reading: a worker whose line is
    # larger than the socket buffer gets EPIPE while sending, yet the answer is there to read.
    from flexkv import KVLayer
    from flexkv.integration.vllm._registration import RegistrationClient

    from .registration_support import LAYER

    path = str(tmp_path / "fake.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    got = []

    def fake_scheduler():
        conn, _ = listener.accept()
        conn.sendall(b'{"ok": false, "retry": true, "taken": false, "error": "too many connections; try again"}\n')
        conn.close()  # without reading the line
        conn, _ = listener.accept()
        got.append(conn.makefile("rb").readline())
        conn.sendall(b'{"ok": true, "complete": true}\n')
        time.sleep(0.5)
        conn.close()

    t = threading.Thread(target=fake_scheduler, daemon=True)
    t.start()
    client = RegistrationClient(path, 0, 1, [KVLayer(*LAYER)] * 20_000, 8)  # a line of about 1 MiB
    try:
        client.wait(20)
    finally:
        client.close()
        t.join(5)
        listener.close()
    assert got and got[0].startswith(b'{"protocol": 1')
