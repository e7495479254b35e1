"""Bad input gets a clear, typed error and leaves the engine working with no pins leaked."""

from __future__ import annotations

import ctypes
import time

import pytest

import flexkv
from flexkv import _native
from conftest import tokens


def raw_create(doc: bytes) -> int:
    h = ctypes.c_uint64()
    rc = _native.lib().flexkv_engine_create(doc, len(doc), ctypes.byref(h))
    if rc == 0:
        _native.lib().flexkv_engine_destroy(h.value)
    return rc


@pytest.mark.parametrize("doc, words", [
    (b"{not json", "invalid configuration JSON"),
    (b'{"num_cpu_blocks": 4, "block_bytes": 64, "bogus": 1}', "bogus"),
    (b'{"num_cpu_blocks": 0, "block_bytes": 64}', "num_cpu_blocks"),
    (b'{"cpu_cache_gb": -1, "block_bytes": 64}', "cpu_cache_gb"),
    (b'{"block_bytes": 64}', "cpu_cache_gb"),
    (b'{"num_cpu_blocks": 4}', "num_layers"),
    (b'{"num_cpu_blocks": 4, "block_bytes": 64, "tokens_per_block": 0}', "tokens_per_block"),
    (b'null', "null"),
])
def test_engine_rejects_bad_config_json(doc, words):
    assert raw_create(doc) == flexkv.ConfigError.status
    assert words in _native.last_error()


def test_cache_larger_than_memory_is_refused():
    with pytest.raises(flexkv.OutOfMemoryError, match="cpu_cache_gb"):
        flexkv.KVManager({"cpu_cache_gb": 1 << 20, "block_bytes": 1 << 20})


def test_null_pointers_are_invalid_arguments():
    lib = _native.lib()
    assert lib.flexkv_engine_create(None, 10, None) == flexkv.InvalidArgumentError.status
    assert "null" in _native.last_error()
    assert lib.flexkv_index_create(16, 10, None) == flexkv.InvalidArgumentError.status
    m = flexkv.KVManager({"num_cpu_blocks": 4, "block_bytes": 64, "use_hugepage_cpu_buffer": False})
    out = ctypes.c_int32()
    rc = lib.flexkv_get_num_new_matched_tokens(m._handle, None, 3, None, 0, 0, None, 0, ctypes.byref(out))
    assert rc == flexkv.InvalidArgumentError.status and "request id" in _native.last_error()
    rc = lib.flexkv_get_num_new_matched_tokens(m._handle, b"abc", 3, None, 5, 0, None, 0, ctypes.byref(out))
    assert rc == flexkv.InvalidArgumentError.status and "token ids are required" in _native.last_error()
    rc = lib.flexkv_update_state_after_alloc(m._handle, b"abc", 3, None, 4, 16)
    assert rc == flexkv.InvalidArgumentError.status and "block_ids is null" in _native.last_error()
    m.close()


def test_stale_and_garbage_handles_are_errors_not_crashes():
    lib = _native.lib()
    m = flexkv.KVManager({"num_cpu_blocks": 4, "block_bytes": 64, "use_hugepage_cpu_buffer": False})
    h = m._handle
    m.close()
    out = ctypes.c_int32()
    assert lib.flexkv_launch_tasks(h, ctypes.byref(out)) == flexkv.InvalidHandleError.status
    assert lib.flexkv_launch_tasks(12345, ctypes.byref(out)) == flexkv.InvalidHandleError.status
    assert lib.flexkv_engine_destroy(h) == flexkv.InvalidHandleError.status
    assert lib.flexkv_engine_destroy(0) == 0
    idx = flexkv.PrefixIndex(16, 10)
    assert lib.flexkv_launch_tasks(idx._handle, ctypes.byref(out)) == flexkv.InvalidHandleError.status
    assert "not a KvEngine" in _native.last_error()
    with pytest.raises(flexkv.InvalidHandleError, match="closed"):
        m.launch_tasks()


def test_request_call_errors(kv_cache, make_engine):
    cache = kv_cache("blocks_first")
    m = make_engine(cache)
    with pytest.raises(flexkv.UnknownRequestError, match="nope"):
        m.update_state_after_alloc("nope", [1], 16)
    with pytest.raises(flexkv.UnknownRequestError):
        m.cancel("nope")
    assert m.launch_tasks() == 0  # nothing prepared is not an error
    toks = tokens(33)
    assert m.request_finished("a", toks, [0, 1, 2]) is True
    with pytest.raises(flexkv.InvalidStateError, match="already finished"):
        m.request_finished("a", toks, [0, 1, 2])
    m.launch_tasks()
    m.wait_finished("a", "sending", 10)
    with pytest.raises(flexkv.InvalidStateError, match="already finished"):
        m.request_finished("a", toks, [0, 1, 2])
    with pytest.raises(flexkv.InvalidArgumentError, match="multiple of tokens_per_block"):
        m.get_num_new_matched_tokens("b", toks, 5)
    with pytest.raises(flexkv.InvalidArgumentError, match="outside the registered cache"):
        m.request_finished("c", tokens(33, start=7), [0, 999, 1])
    assert m.get_num_new_matched_tokens("d", toks, 0) == 32
    with pytest.raises(flexkv.InvalidArgumentError, match="only 32 were matched"):
        m.update_state_after_alloc("d", [5, 6, 7], 48)
    with pytest.raises(flexkv.InvalidArgumentError, match="block ids given"):
        m.update_state_after_alloc("d", [5], 32)
    m.update_state_after_alloc("d", [5, 6], 0)
    assert m.stats()["pinned_blocks"] == 0


def test_query_with_small_buffer_loses_nothing(kv_cache, make_engine):
    cache = kv_cache("mla")
    m = make_engine(cache)
    long_id = "r" * 200
    assert m.request_finished(long_id, tokens(33), [0, 1, 2]) is True
    m.launch_tasks()
    m.wait(5)
    time.sleep(0.05)
    lib = _native.lib()
    buf = (ctypes.c_uint8 * 8)()
    n, f = ctypes.c_size_t(), ctypes.c_size_t()
    rc = lib.flexkv_query_finished_task(m._handle, buf, 8, ctypes.byref(n), None, 0, ctypes.byref(f))
    assert rc == flexkv.BufferTooSmallError.status
    assert n.value == 5 + 200
    assert m.query_finished().sending == {long_id}


def test_reset_during_transfers_reports_everything_and_leaks_no_pin(kv_cache, make_engine):
    cache = kv_cache("blocks_first", num_blocks=128, heads=8, head_size=64)
    m = make_engine(cache, num_cpu_blocks=512)
    ids = []
    for i in range(32):
        toks = tokens(16 * 4 + 1, start=1000 * (i + 1))
        rid = f"r{i}"
        assert m.request_finished(rid, toks, [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3])
        ids.append(rid)
    m.launch_tasks()
    m.reset()
    got = set()
    deadline = time.monotonic() + 10
    while len(got) < len(ids) and time.monotonic() < deadline:
        got |= m.query_finished().sending
        m.wait(0.05)
    assert got == set(ids)
    st = m.stats()
    assert st["pinned_blocks"] == 0 and st["cpu_blocks_used"] == 0 and st["tasks_in_flight"] == 0
    # The engine keeps working after the reset.
    assert m.put("again", tokens(33), [0, 1, 2]) is True
    assert m.get_num_new_matched_tokens("x", tokens(33), 0) == 32


def test_shutdown_with_tasks_in_flight_then_calls_fail_cleanly(kv_cache, make_engine):
    cache = kv_cache("blocks_first", num_blocks=128, heads=8, head_size=64)
    m = make_engine(cache, num_cpu_blocks=512)
    for i in range(32):
        m.request_finished(f"r{i}", tokens(65, start=1000 * (i + 1)), [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3])
    m.launch_tasks()
    m.shutdown()
    m.shutdown()  # idempotent
    with pytest.raises(flexkv.ShutDownError):
        m.launch_tasks()
    m.close()


def test_register_rejects_mismatched_layout(kv_cache, make_engine):
    cache = kv_cache("kv_first")
    m = make_engine(None, block_bytes=cache.block_bytes * 2)
    with pytest.raises(flexkv.InvalidArgumentError, match="bytes per block"):
        m.register_kv_caches(cache.layers(), cache.num_blocks)
    with pytest.raises(flexkv.InvalidArgumentError, match="num_device_blocks"):
        m.register_kv_caches(cache.layers(), 0)
    # Nothing registered: nothing is offered and saves are skipped.
    assert m.get_num_new_matched_tokens("a", tokens(33), 0) == 0
    assert m.request_finished("a", tokens(33), [0, 1]) is False
