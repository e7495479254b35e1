"""The control-plane index reproduces the reference replayer on the shared trace generator."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import flexkv
from conftest import SHARED

BENCH = SHARED / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory):
    assert BENCH.is_dir(), f"{BENCH} is missing: the shared bench folder must sit beside the repo"
    out = tmp_path_factory.mktemp("trace") / "small.jsonl"
    subprocess.run([sys.executable, str(BENCH / "make_trace.py"), "--small", "--out", str(out)], check=True)
    with open(out) as f:
        f.readline()
        return [json.loads(line) for line in f]


def reference(requests, capacity):
    ref = _load("replay_reference")
    cache = ref.PrefixCache(capacity)
    total = 0
    for r in requests:
        total += cache.get_match(ref.block_keys(r["prompt"], 16)) * 16
        cache.put(ref.block_keys(r["prompt"] + r["output"], 16))
    return total


def replay(requests, capacity):
    idx = flexkv.PrefixIndex(16, capacity)
    total = 0
    for i, r in enumerate(requests):
        total += idx.match(i, r["prompt"])
        idx.insert(i, r["prompt"] + r["output"])
    info = idx.info()
    idx.close()
    return total, info


def test_unlimited_capacity_matches_reference_exactly(small_trace):
    got, info = replay(small_trace, 1 << 30)
    assert got == reference(small_trace, None) > 0
    assert info["evictions"] == 0


@pytest.mark.parametrize("capacity", [200, 500, 1000])
def test_lru_capacity_matches_reference_and_is_respected(small_trace, capacity):
    got, info = replay(small_trace, capacity)
    want = reference(small_trace, capacity)
    assert abs(got - want) <= 0.005 * max(want, 1)
    assert info["blocks"] <= capacity and info["evictions"] > 0


def test_sequence_may_only_grow():
    with flexkv.PrefixIndex(16, 100) as idx:
        idx.match(1, list(range(64)))
        with pytest.raises(flexkv.InvalidArgumentError, match="only grow"):
            idx.match(1, list(range(32)))
