"""The connector class against vLLM's current base-class API: parameter names (vLLM calls some
methods by keyword in its tests and wrappers), the constructor with a required
``kv_cache_config``, and the calls vLLM 2026 adds (``on_new_request``, ``bind_gpu_block_pool``)."""

from __future__ import annotations

import inspect

import pytest

from vllm.distributed.kv_transfer.kv_connector.v1 import base as vllm_base
from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1, KVConnectorRole

from flexkv.integration.vllm import connector as flex_connector
from flexkv.integration.vllm.connector import FlexKVConnectorV1

from .harness import make_kv_cache_config, prompt
from .test_scenarios import served


def _params(fn):
    return [p for p in inspect.signature(fn).parameters if p != "self"]


@pytest.mark.parametrize("name", ["handle_preemptions", "on_new_request", "bind_gpu_block_pool",
                                  "get_num_new_matched_tokens", "update_state_after_alloc", "build_connector_meta",
                                  "update_connector_output", "request_finished", "register_kv_caches",
                                  "start_load_kv", "wait_for_layer_load", "save_kv_layer", "get_finished"])
def test_overridden_methods_take_the_base_class_parameter_names(name):
    ours = getattr(FlexKVConnectorV1, name)
    assert ours is not getattr(KVConnectorBase_V1, name), f"{name} is not overridden"
    assert _params(ours) == _params(getattr(KVConnectorBase_V1, name))


def test_handle_preemptions_by_keyword_and_new_calls_are_accepted(make_vllm_config):
    cfg = make_vllm_config()
    kcc = make_kv_cache_config(cfg, 16)
    s = FlexKVConnectorV1(cfg, KVConnectorRole.SCHEDULER, kcc)
    w = FlexKVConnectorV1(cfg, KVConnectorRole.WORKER, kcc)
    try:
        w.handle_preemptions(kv_connector_metadata=None)
        s.bind_gpu_block_pool(gpu_block_pool=object())

        class Req:
            request_id = "r"

        s.on_new_request(Req())
    finally:
        w.shutdown()
        s.shutdown()


def test_a_base_class_that_requires_kv_cache_config(make_vllm_config, make_engine, monkeypatch):
    # vLLM 2026's base constructor has no default for kv_cache_config; the factory passes it.
    original = KVConnectorBase_V1.__init__

    def strict(self, vllm_config, role, kv_cache_config):
        assert kv_cache_config is not None
        original(self, vllm_config, role, kv_cache_config)

    monkeypatch.setattr(KVConnectorBase_V1, "__init__", strict)
    monkeypatch.setattr(flex_connector, "_BASE_TAKES_KV_CACHE_CONFIG", True)
    assert "kv_cache_config" in inspect.signature(vllm_base.KVConnectorBase_V1.__init__).parameters
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    KVConnectorFactory.module_path_first = True
    eng = make_engine(make_vllm_config(kv_connector_module_path="flexkv.integration.vllm.connector"),
                      num_gpu_blocks=64)
    assert isinstance(eng.connector, FlexKVConnectorV1)
    served(eng, prompt(40))
    assert served(eng, prompt(40)).num_external_computed_tokens == 32
