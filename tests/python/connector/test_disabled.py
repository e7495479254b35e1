"""ENABLE_FLEXKV=0 (FlexKV's master switch): the connector creates no engine, the worker
registers nothing, and vLLM gets the answers of an empty cache, so requests run as without a
connector."""

from __future__ import annotations

import pytest

import flexkv
from flexkv.integration.vllm import _registry
from flexkv.integration.vllm._disabled import DisabledScheduler, DisabledWorker
from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

from .harness import prompt, reference_outputs


def impl(vllm_config, role, kv_cache_config):
    return FlexKVConnectorV1Impl(vllm_config, role)


@pytest.fixture
def no_engine_allowed(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("a disabled connector created an engine")

    monkeypatch.setattr(flexkv.KVManager, "__init__", refuse)


@pytest.mark.parametrize("env, extra", [({"ENABLE_FLEXKV": "0"}, {}), ({}, {"enable_flexkv": False})])
def test_disabled_connector_serves_requests_like_no_connector(monkeypatch, make_vllm_config, make_engine,
                                                              no_engine_allowed, env, extra):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    eng = make_engine(make_vllm_config(extra_config=extra), num_gpu_blocks=64, make_connector=impl)
    assert isinstance(eng.connector.scheduler, DisabledScheduler) and eng.connector.worker is None
    assert isinstance(eng.worker.connector.worker, DisabledWorker)
    assert not any(s.layers for s in _registry._slots.values())  # the worker registered nothing
    prompts = {}
    for tokens in (prompt(40), prompt(40, 5000), prompt(40, 5000)):  # the repeat would be a hit with FlexKv
        prompts[eng.add_request(tokens, 3).request_id] = tokens
        eng.run(keep_alive=True)
    for rid, tokens in prompts.items():
        done = eng.finished[rid]
        assert done.num_external_computed_tokens == 0
        assert list(done.output_token_ids) == reference_outputs(tokens, 3)
    assert eng.connector.get_kv_connector_stats() is None and eng.worker.connector.get_kv_connector_stats() is None
    assert eng.connector.is_ready() and eng.connector.reset_cache() is True
    eng.assert_quiescent()


def test_disabled_halves_answer_as_an_empty_cache():
    s = DisabledScheduler()
    assert s.get_num_new_matched_tokens(object(), 0) == (0, False)
    assert s.request_finished(object(), [1, 2]) == (False, None)
    assert DisabledWorker().get_block_ids_with_load_errors() == set()
