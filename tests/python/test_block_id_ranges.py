"""Block ids are int32 >= 0 in the C ABI. An id that does not fit is refused, naming the
argument, the position and the value, before anything is narrowed: numpy and torch would
silently wrap 2**32 + 3 to 3 and the load would write into device block 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import flexkv
from conftest import tokens

TOO_BIG = 2 ** 32 + 3


def saved(kv_cache, make_engine):
    cache = kv_cache("blocks_first")
    m = make_engine(cache)
    toks = tokens(16 * 4 + 1)
    assert m.put("a", toks, [0, 1, 2, 3])
    for b in range(4, 16):
        cache.zero_block(b)
    return cache, m, toks


@pytest.mark.parametrize("make", [
    lambda ids: np.array(ids, dtype=np.int64),
    lambda ids: torch.tensor(ids, dtype=torch.int64),
    lambda ids: np.array(ids, dtype=np.uint64),
    list,
])
def test_block_ids_beyond_int32_are_refused_and_nothing_is_loaded(kv_cache, make_engine, make):
    cache, m, toks = saved(kv_cache, make_engine)
    before = [cache.block(b) for b in range(4, 16)]
    assert m.get_num_new_matched_tokens("b", toks, 0) == 64
    ids = make([TOO_BIG + i for i in range(4)])
    with pytest.raises(flexkv.InvalidArgumentError, match=rf"block_ids\[0\] is {TOO_BIG}, outside 0\.\.2147483647"):
        m.update_state_after_alloc("b", ids, 64)
    m.launch_tasks()
    assert m.stats()["blocks_loaded"] == 0
    assert all(all(torch.equal(x, y) for x, y in zip(cache.block(b), old)) for b, old in zip(range(4, 16), before))


@pytest.mark.parametrize("ids, where, value", [
    (np.array([4, 5, -1], dtype=np.int32), 2, -1),
    (np.array([4, 2 ** 31], dtype=np.int64), 1, 2 ** 31),
    (torch.tensor([4, -7], dtype=torch.int32), 1, -7),
    ([4, 5, 6, -2], 3, -2),
    ([4, 2 ** 31], 1, 2 ** 31),
    ((4, 2 ** 70), 1, 2 ** 70),
])
def test_negative_and_oversized_block_ids_name_their_position(kv_cache, make_engine, ids, where, value):
    cache, m, toks = saved(kv_cache, make_engine)
    m.get_num_new_matched_tokens("b", toks, 0)
    with pytest.raises(flexkv.InvalidArgumentError, match=rf"block_ids\[{where}\] is {value}, outside 0\.\.2147483647"):
        m.update_state_after_alloc("b", ids, 64)


@pytest.mark.parametrize("ids, words", [
    (np.array([4.0, 5.0]), "block_ids must hold integers, got dtype float64"),
    (torch.tensor([4.0, 5.0]), "block_ids must hold integers, got dtype torch.float32"),
    (np.array([True, False]), "block_ids must hold integers, got dtype bool"),
    (torch.tensor([True]), "block_ids must hold integers, got dtype torch.bool"),
    (np.array([4, 5], dtype=object), "block_ids must hold integers, got dtype object"),
    ([4, 5.5], r"block_ids\[1\] is 5.5, not an integer"),
    ([4, "5"], r"block_ids\[1\] is '5', not an integer"),
])
def test_block_ids_that_are_not_integers_are_refused(kv_cache, make_engine, ids, words):
    cache, m, toks = saved(kv_cache, make_engine)
    m.get_num_new_matched_tokens("b", toks, 0)
    with pytest.raises(flexkv.InvalidArgumentError, match=words):
        m.update_state_after_alloc("b", ids, 64)


def test_request_finished_checks_its_block_ids_too(kv_cache, make_engine):
    cache, m, toks = saved(kv_cache, make_engine)
    with pytest.raises(flexkv.InvalidArgumentError, match=r"block_ids\[1\] is 4294967299"):
        m.request_finished("c", toks, np.array([5, TOO_BIG, 6, 7], dtype=np.int64))
    assert m.stats()["pinned_blocks"] == 0


@pytest.mark.parametrize("make", [
    lambda ids: np.array(ids, dtype=np.int16), lambda ids: np.array(ids, dtype=np.uint8),
    lambda ids: torch.tensor(ids, dtype=torch.int64), lambda ids: np.array(ids, dtype=np.int64)[::-1][::-1],
    lambda ids: tuple(ids), lambda ids: range(ids[0], ids[0] + 4),
])
def test_block_ids_of_any_integer_type_that_fit_still_load(kv_cache, make_engine, make):
    cache, m, toks = saved(kv_cache, make_engine)
    assert m.get("b", toks, make([10, 11, 12, 13])) == set()
    assert all(cache.same(s, d) for s, d in zip([0, 1, 2, 3], [10, 11, 12, 13]))
