"""Trace files: a header with every parameter, one JSON line per request, cached by parameters."""

from __future__ import annotations

import json
import os

import pytest

from flexkv import workload
from flexkv.workload import ChatParams

PARAMS = ChatParams(conversations=3, turns=2, system_tokens=32, user_min=4, user_max=20,
                    answer_min=2, answer_max=10, vocab_size=500)


def test_written_trace_reads_back_with_its_parameters(tmp_path):
    path = tmp_path / "t.jsonl"
    assert workload.write(path, PARAMS) == 6
    head, reqs = workload.read(path)
    assert head == {"trace_version": 1, "generator": "flexkv.workload.chat", "params": PARAMS.as_dict()}
    assert reqs == list(workload.generate(PARAMS))
    lines = path.read_text(encoding="ascii").splitlines()
    assert len(lines) == 7
    assert set(json.loads(lines[1])) == {"id", "conv", "turn", "prompt", "output"}


def test_same_parameters_write_the_same_bytes(tmp_path):
    workload.write(tmp_path / "a.jsonl", PARAMS)
    workload.write(tmp_path / "b.jsonl", PARAMS)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_another_trace_version_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"trace_version": 99, "params": {}}\n', encoding="ascii")
    with pytest.raises(ValueError, match="trace_version"):
        workload.read(path)


def test_cached_trace_is_reused_for_the_same_parameters_and_remade_for_others(tmp_path):
    path = tmp_path / "cache" / "t.jsonl"
    first = workload.cached(path, PARAMS)
    assert first == list(workload.generate(PARAMS))
    os.utime(path, ns=(1, 1))  # a rewrite would give it a new modification time
    assert workload.cached(path, PARAMS) == first and path.stat().st_mtime_ns == 1
    other = ChatParams(**{**PARAMS.as_dict(), "seed": 1})
    assert workload.cached(path, other) == list(workload.generate(other))
    assert path.stat().st_mtime_ns != 1
    assert workload.read(path)[0]["params"]["seed"] == 1
