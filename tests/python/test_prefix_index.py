"""The engine's control-plane index (flexkv.PrefixIndex) reproduces the reference replay of
flexkv.workload exactly, request by request, on the small chat trace."""

from __future__ import annotations

import pytest

import flexkv
from flexkv import workload


@pytest.fixture(scope="module")
def small_trace():
    return list(workload.generate(workload.small()))


def replay(requests, capacity):
    idx = flexkv.PrefixIndex(16, capacity)
    matched = []
    for i, r in enumerate(requests):
        matched.append(idx.match(i, r["prompt"]))
        idx.insert(i, r["prompt"] + r["output"])
    info = idx.info()
    idx.close()
    return matched, info


def test_unlimited_capacity_matches_reference_exactly(small_trace):
    got, info = replay(small_trace, 1 << 30)
    want = workload.replay(small_trace, 16, None)
    assert got == want.matched and sum(got) > 0
    assert info["evictions"] == 0 and info["blocks"] == want.stored_blocks


# The small trace stores about 1,850 blocks: every one of these capacities evicts.
@pytest.mark.parametrize("capacity", [200, 500, 1000])
def test_lru_capacity_matches_reference_exactly_and_is_respected(small_trace, capacity):
    got, info = replay(small_trace, capacity)
    want = workload.replay(small_trace, 16, capacity)
    assert got == want.matched and sum(got) > 0
    assert info["evictions"] == want.evicted_blocks > 0
    assert info["blocks"] <= capacity


def test_sequence_may_only_grow():
    with flexkv.PrefixIndex(16, 100) as idx:
        idx.match(1, list(range(64)))
        with pytest.raises(flexkv.InvalidArgumentError, match="only grow"):
            idx.match(1, list(range(32)))
