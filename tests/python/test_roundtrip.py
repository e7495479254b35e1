"""Put then get through the engine with torch CPU tensors: every loaded byte equals the saved one."""

from __future__ import annotations

import pytest

from conftest import tokens

LAYOUTS = ["kv_first", "blocks_first", "packed", "mla"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_put_then_get_restores_every_byte(kv_cache, make_engine, layout):
    cache = kv_cache(layout)
    m = make_engine(cache)
    toks = tokens(16 * 5 + 1)  # the last token's KV is never saved: 5 full blocks
    src = [3, 7, 1, 9, 4, 5]
    assert m.get_num_new_matched_tokens("a", toks, 0) == 0
    m.update_state_after_alloc("a", src, 0)
    assert m.put("a", toks, src) is True

    dst = [10, 11, 12, 13, 14, 15]
    for b in dst:
        cache.zero_block(b)
    assert m.get_num_new_matched_tokens("b", toks, 0) == 80
    m.update_state_after_alloc("b", dst, 80)
    m.launch_tasks()
    failed = m.wait_finished("b", "recving", 10.0)
    assert failed == set()
    for s, d in zip(src[:5], dst[:5]):
        assert cache.same(s, d)
    assert not cache.same(src[5], dst[5])  # the partial block was not loaded
    m.request_finished("b", None, dst, save=False)
    st = m.stats()
    assert st["pinned_blocks"] == 0
    assert st["blocks_saved"] == 5 and st["blocks_loaded"] == 5
    assert st["bytes_moved"] == 10 * cache.block_bytes


def test_partial_prefix_hit_loads_only_the_shared_blocks(kv_cache, make_engine):
    cache = kv_cache("blocks_first")
    m = make_engine(cache)
    base = tokens(16 * 4 + 1)
    m.put("a", base, [0, 1, 2, 3, 4])
    other = base[:32] + tokens(40, start=5)  # shares 2 blocks
    assert m.get_num_new_matched_tokens("b", other, 0) == 32
    assert m.get(  "c", base[:48] + [1], [20, 21, 22, 23]) == set()
    assert cache.same(0, 20) and cache.same(1, 21) and cache.same(2, 22)


def test_num_computed_tokens_loads_only_blocks_beyond_local_hit(kv_cache, make_engine):
    cache = kv_cache("kv_first")
    m = make_engine(cache)
    toks = tokens(16 * 4 + 1)
    m.put("a", toks, [0, 1, 2, 3])
    for b in (10, 11, 12, 13):
        cache.zero_block(b)
    # vLLM already has block 0 locally (in block 10): only blocks 1..3 come from FlexKv.
    assert m.get_num_new_matched_tokens("b", toks, 16) == 48
    m.update_state_after_alloc("b", [10, 11, 12, 13], 48)
    m.launch_tasks()
    assert m.wait_finished("b", "recving", 10.0) == set()
    assert not cache.same(0, 10)
    assert cache.same(1, 11) and cache.same(2, 12) and cache.same(3, 13)


def test_repeated_match_replaces_pins(kv_cache, make_engine):
    cache = kv_cache("mla")
    m = make_engine(cache)
    toks = tokens(16 * 3 + 1)
    m.put("a", toks, [0, 1, 2])
    for _ in range(5):
        assert m.get_num_new_matched_tokens("b", toks, 0) == 48
    assert m.stats()["pinned_blocks"] == 3
    m.update_state_after_alloc("b", [5, 6, 7], 0)
    assert m.stats()["pinned_blocks"] == 0


def test_namespace_separates_caches(kv_cache, make_engine):
    cache = kv_cache("mla")
    m = make_engine(cache)
    toks = tokens(16 * 3 + 1)
    m.request_finished("a", toks, [0, 1, 2], save=True, namespace="salt-1")
    m.launch_tasks()
    m.wait_finished("a", "sending", 10.0)
    assert m.get_num_new_matched_tokens("b", toks, 0, namespace="salt-2") == 0
    assert m.get_num_new_matched_tokens("c", toks, 0) == 0
    assert m.get_num_new_matched_tokens("d", toks, 0, namespace="salt-1") == 48


def test_many_requests_from_threads(kv_cache, make_engine):
    import threading
    import time

    cache = kv_cache("blocks_first", num_blocks=64)
    m = make_engine(cache, num_cpu_blocks=256)
    errors = []

    def worker(i):
        try:
            toks = tokens(16 * 2 + 1, start=10_000 * (i + 1))
            assert m.request_finished(f"p{i}", toks, [2 * i, 2 * i + 1]) is True
            m.launch_tasks()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sending = set()
    deadline = time.monotonic() + 10
    while len(sending) < 16 and time.monotonic() < deadline:
        sending |= m.query_finished().sending
        m.wait(0.05)
    assert sending == {f"p{i}" for i in range(16)}
    for i in range(16):
        assert m.get_num_new_matched_tokens(f"q{i}", tokens(16 * 2 + 1, start=10_000 * (i + 1)), 0) == 32


def test_a_grown_request_sends_only_its_new_tokens(kv_cache, make_engine, monkeypatch):
    # The engine keeps the hashed blocks of what it saw; a longer sequence later (the output
    # after the prompt) crosses as its new end only, and hashes the same as the whole.
    cache = kv_cache("kv_first")
    m = make_engine(cache)
    prompt_toks, full = tokens(40), tokens(67)
    assert m.get_num_new_matched_tokens("a", prompt_toks, 0) == 0
    sizes = []
    import flexkv.manager as mgr

    real = mgr.as_c_array
    monkeypatch.setattr(mgr, "as_c_array", lambda v, size, *name: (sizes.append(len(v)) or real(v, size, *name)))
    assert m.request_finished("a", full, list(range(5)), save=True)
    assert 64 not in sizes and max(sizes or [0]) <= 67 - 32  # only tokens from the last full block on
    m.launch_tasks()
    m.wait_finished("a", "sending")
    assert m.get_num_new_matched_tokens("b", full, 0) == 64  # 4 blocks of the grown sequence saved
