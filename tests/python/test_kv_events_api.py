"""KVManager's KV-event calls on their own (no vLLM): records named by the caller's hashes, the
parent's hash on a stored block, the tier; the checks of set_block_hashes."""

from __future__ import annotations

import ctypes

import pytest

import flexkv
from flexkv.metrics import snapshot

BB, TPB = 4096, 16


@pytest.fixture
def engine():
    buf = (ctypes.c_uint8 * (8 * BB))()
    m = flexkv.KVManager({"num_cpu_blocks": 2, "block_bytes": BB, "tokens_per_block": TPB,
                          "use_hugepage_cpu_buffer": False, "transfer_threads": 1})
    m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(buf), BB, BB)], 8)
    m._test_buffer = buf
    yield m
    m.close()


def save(m, rid, tokens, hashes=None):
    m.get_num_new_matched_tokens(rid, tokens, 0)  # the engine knows the request from here on
    if hashes is not None:
        m.set_block_hashes(rid, 0, hashes)
    assert m.put(rid, tokens, [0, 1, 2])


def test_records_name_blocks_by_the_given_hashes(engine):
    assert engine.take_kv_events() == []  # off: nothing
    engine.enable_kv_events(8)
    tokens = list(range(100, 100 + 2 * TPB + 1))
    save(engine, "a", tokens, [b"A" * 32, b"B" * 32])
    got = engine.take_kv_events()
    assert [(e.kind, e.tier, e.block_hash, e.parent_hash) for e in got] == [
        ("stored", "cpu", b"A" * 32, None), ("stored", "cpu", b"B" * 32, b"A" * 32)]
    save(engine, "b", list(range(900, 900 + 2 * TPB + 1)), [b"C" * 8, b"D" * 8])  # 2 slots: a's blocks go
    got = engine.take_kv_events()
    assert sorted(e.block_hash for e in got if e.kind == "removed") == [b"A" * 32, b"B" * 32]
    assert [e.block_hash for e in got if e.kind == "stored"] == [b"C" * 8, b"D" * 8]
    engine.reset()
    assert [e.kind for e in engine.take_kv_events()] == ["cleared"]
    assert snapshot(engine)["kv_events_recorded"] == 7


def test_set_block_hashes_checks_its_arguments(engine):
    tokens = list(range(100, 100 + 2 * TPB + 1))
    engine.get_num_new_matched_tokens("a", tokens, 0)
    with pytest.raises(flexkv.InvalidStateError, match="not enabled"):
        engine.set_block_hashes("a", 0, [b"A" * 32])
    engine.enable_kv_events(8)
    with pytest.raises(flexkv.UnknownRequestError):
        engine.set_block_hashes("nobody", 0, [b"A" * 32])
    with pytest.raises(flexkv.InvalidArgumentError, match="one length"):
        engine.set_block_hashes("a", 0, [b"A" * 32, b"B" * 16])
    with pytest.raises(flexkv.InvalidArgumentError, match="1 to 32"):
        engine.set_block_hashes("a", 0, [b"A" * 33])
    with pytest.raises(flexkv.InvalidArgumentError, match="continue from block 0"):
        engine.set_block_hashes("a", 1, [b"A" * 32])
    with pytest.raises(flexkv.InvalidArgumentError):
        engine.enable_kv_events(0)
    engine.set_block_hashes("a", 0, [b"A" * 32])
    with pytest.raises(flexkv.InvalidArgumentError, match="are 32 bytes"):
        engine.set_block_hashes("a", 1, [b"B" * 16])
