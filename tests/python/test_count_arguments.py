"""Counts and other integer arguments fit their C types (int32 counts >= 0, int32 pids and
ranks, int64 and uint64 layer fields): ctypes would silently keep only the low bits of a
Python int, so 2**32 + 16 computed tokens would be read as 16. Each is refused naming it."""

from __future__ import annotations

import numpy as np
import pytest

import flexkv
from conftest import tokens

I32 = 2 ** 31 - 1


@pytest.fixture
def engine(kv_cache, make_engine):
    cache = kv_cache("blocks_first")
    m = make_engine(cache)
    m.put("a", tokens(16 * 4 + 1), [0, 1, 2, 3])
    return cache, m


@pytest.mark.parametrize("value", [2 ** 32 + 16, -16, 2 ** 31, True, 16.0, "16", None])
def test_num_computed_tokens_is_an_int32_count(engine, value):
    _, m = engine
    with pytest.raises(flexkv.InvalidArgumentError, match=rf"num_computed_tokens must be an integer from 0 to {I32}"):
        m.get_num_new_matched_tokens("b", tokens(16 * 4 + 1), value)


@pytest.mark.parametrize("value", [2 ** 32 + 64, -1, 2 ** 31, False, 64.0])
def test_num_external_tokens_is_an_int32_count(engine, value):
    _, m = engine
    assert m.get_num_new_matched_tokens("b", tokens(16 * 4 + 1), 0) == 64
    with pytest.raises(flexkv.InvalidArgumentError, match=rf"num_external_tokens must be an integer from 0 to {I32}"):
        m.update_state_after_alloc("b", [10, 11, 12, 13], value)


def test_numpy_integers_are_counts_too(engine):
    _, m = engine
    assert m.get_num_new_matched_tokens("b", tokens(16 * 4 + 1), np.int64(16)) == 48
    m.update_state_after_alloc("b", [10, 11, 12, 13], np.int32(48))


@pytest.mark.parametrize("kw, words", [
    ({"num_blocks": 2 ** 32 + 8}, "num_blocks must be an integer from 0 to 2147483647"),
    ({"layer": flexkv.KVLayer(2 ** 64, 256, 128)}, "layer 0's base must be an integer from 0 to 18446744073709551615"),
    ({"layer": flexkv.KVLayer(4096, 2 ** 63, 128)}, "layer 0's block_stride must be an integer from"),
    ({"layer": flexkv.KVLayer(4096, 256, 128, -2 ** 63 - 1, 2)}, "layer 0's kv_stride must be an integer from"),
    ({"layer": flexkv.KVLayer(4096, 256, 128, 0, 2 ** 32 + 1)}, "layer 0's num_kv must be an integer from"),
    ({"pid": 2 ** 32 + 1}, "pid must be an integer from 0 to 2147483647"),
    ({"cuda_device": 2 ** 32}, "cuda_device must be an integer from 0 to 2147483647"),
])
def test_registration_arguments_fit_their_c_types(make_engine, kw, words):
    m = make_engine()
    layer = kw.pop("layer", flexkv.KVLayer(4096, 256, 128, 128, 2))
    args = {"num_blocks": 8, **kw}
    with pytest.raises(flexkv.InvalidArgumentError, match=words):
        m.register_kv_caches([layer], **args)


def test_rank_arguments_fit_their_c_types(make_engine):
    m = make_engine()
    layer = flexkv.KVLayer(4096, 256, 128, 128, 2)
    with pytest.raises(flexkv.InvalidArgumentError, match="rank must be an integer"):
        m.register_rank(2 ** 32, 2, 1, [layer], 8)
    with pytest.raises(flexkv.InvalidArgumentError, match="world_size must be an integer"):
        m.register_rank(0, 2 ** 32 + 2, 1, [layer], 8)
    with pytest.raises(flexkv.InvalidArgumentError, match="rank must be an integer"):
        m.deregister_rank(2 ** 32)


def test_wait_and_index_arguments_fit_their_c_types(make_engine):
    m = make_engine()
    with pytest.raises(flexkv.InvalidArgumentError, match="timeout"):
        m.wait(2 ** 32)
    with pytest.raises(flexkv.InvalidArgumentError, match="tokens_per_block must be an integer"):
        flexkv.PrefixIndex(2 ** 32 + 16, 10)
    with pytest.raises(flexkv.InvalidArgumentError, match="capacity_blocks must be an integer"):
        flexkv.PrefixIndex(16, 2 ** 64)
    with flexkv.PrefixIndex(16, 10) as idx:
        with pytest.raises(flexkv.InvalidArgumentError, match="sequence must be an integer"):
            idx.match(2 ** 64 + 1, [1, 2])
