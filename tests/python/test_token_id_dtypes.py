"""Token ids are int64 in the C ABI. Arrays of any integer dtype whose values fit are taken;
floats (which would be truncated), bools and uint64 values above 2**63 - 1 (which would wrap to
negative ids) are refused, naming the argument. An int64 array, the common case, is neither
copied nor scanned."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
import torch

import flexkv
from flexkv._buffers import as_c_array
from conftest import tokens


@pytest.fixture
def index():
    idx = flexkv.PrefixIndex(16, 1024)
    yield idx
    idx.close()


@pytest.mark.parametrize("toks, words", [
    (np.arange(33, dtype=np.float64), "token_ids must hold integers, got dtype float64"),
    (np.arange(33, dtype=np.float16), "token_ids must hold integers, got dtype float16"),
    (torch.arange(33, dtype=torch.float32), "token_ids must hold integers, got dtype torch.float32"),
    (np.ones(33, dtype=bool), "token_ids must hold integers, got dtype bool"),
    (torch.ones(33, dtype=torch.bool), "token_ids must hold integers, got dtype torch.bool"),
    (np.array(["1", "2"]), "token_ids must hold integers, got dtype <U1"),
    (np.array([1, 2 ** 64 - 1], dtype=np.uint64), r"token_ids\[1\] is 18446744073709551615, outside "
                                                   r"-9223372036854775808\.\.9223372036854775807"),
    ([1, 2, 2.7], r"token_ids\[2\] is 2.7, not an integer"),
    ([1, 2 ** 63], r"token_ids\[1\] is 9223372036854775808, outside"),
    (array("d", [1.0, 2.0]), r"token_ids\[0\] is 1.0, not an integer"),
])
def test_token_ids_that_would_be_truncated_or_wrapped_are_refused(index, make_engine, toks, words):
    with pytest.raises(flexkv.InvalidArgumentError, match=words):
        index.insert(1, toks)
    m = make_engine()
    with pytest.raises(flexkv.InvalidArgumentError, match=words):
        m.get_num_new_matched_tokens("r", toks, 0)


def test_floats_were_truncated_into_other_tokens_before(index):
    # 16.9 would have become 16: a different prompt matching the cached one.
    index.insert(1, list(range(17)))
    with pytest.raises(flexkv.InvalidArgumentError):
        index.match(2, np.arange(17) + 0.9)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64])
def test_integer_dtypes_whose_values_fit_are_taken(index, dtype):
    toks = np.arange(1, 34).astype(dtype)
    assert index.insert(1, toks) == 2
    assert index.match(2, list(range(1, 34))) == 32


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.uint8])
def test_torch_integer_dtypes_are_taken(index, dtype):
    assert index.insert(1, torch.arange(1, 34).to(dtype)) == 2


def test_an_int64_array_is_passed_as_it_is():
    toks = np.arange(32 * 1024, dtype=np.int64)
    keep, addr, n = as_c_array(toks, 8, "token_ids")
    assert keep is toks and addr == toks.ctypes.data and n == toks.size
    t = torch.arange(32 * 1024, dtype=torch.int64)
    keep, addr, n = as_c_array(t, 8, "token_ids")
    assert addr == t.data_ptr() and n == t.numel()
    a = array("q", tokens(100))
    keep, addr, n = as_c_array(a, 8, "token_ids")
    assert keep is a and addr == a.buffer_info()[0]
