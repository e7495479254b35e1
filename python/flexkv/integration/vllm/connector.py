"""``FlexKVConnectorV1`` as a vLLM ``KVConnectorBase_V1``, for vLLM older than 0.17.2 (registered
by the ``vllm.general_plugins`` entry point) and for ``kv_connector_module_path``:

    --kv-transfer-config '{"kv_connector": "FlexKVConnectorV1",
                           "kv_connector_module_path": "flexkv.integration.vllm.connector",
                           "kv_role": "kv_both"}'

This module imports vLLM; ``import flexkv`` does not import it.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1

from .vllm_v1_adapter import FlexKVConnectorV1Impl

_BASE_TAKES_KV_CACHE_CONFIG = "kv_cache_config" in inspect.signature(KVConnectorBase_V1.__init__).parameters


class FlexKVConnectorV1(KVConnectorBase_V1):
    """Delegates every call to :class:`FlexKVConnectorV1Impl`."""

    def __init__(self, vllm_config, role, kv_cache_config=None) -> None:
        # vLLM <= 0.11 bases take two arguments, 0.12+ three (``kv_cache_config``).
        if _BASE_TAKES_KV_CACHE_CONFIG:
            super().__init__(vllm_config, role, kv_cache_config)
        else:
            super().__init__(vllm_config, role)
        self._impl = FlexKVConnectorV1Impl(vllm_config, role, kv_cache_config)

    # scheduler side
    def get_num_new_matched_tokens(self, request, num_computed_tokens):
        return self._impl.get_num_new_matched_tokens(request, num_computed_tokens)

    def update_state_after_alloc(self, request, blocks, num_external_tokens):
        return self._impl.update_state_after_alloc(request, blocks, num_external_tokens)

    def build_connector_meta(self, scheduler_output):
        return self._impl.build_connector_meta(scheduler_output)

    def update_connector_output(self, connector_output):
        return self._impl.update_connector_output(connector_output)

    def request_finished(self, request, block_ids):
        return self._impl.request_finished(request, block_ids)

    def take_events(self):
        return self._impl.take_events()

    def reset_cache(self):
        return self._impl.reset_cache()

    # worker side
    def register_kv_caches(self, kv_caches):
        return self._impl.register_kv_caches(kv_caches)

    def start_load_kv(self, forward_context, **kwargs: Any) -> None:
        return self._impl.start_load_kv(forward_context, **kwargs)

    def wait_for_layer_load(self, layer_name: str) -> None:
        return self._impl.wait_for_layer_load(layer_name)

    def save_kv_layer(self, layer_name, kv_layer, attn_metadata, **kwargs: Any) -> None:
        return self._impl.save_kv_layer(layer_name, kv_layer, attn_metadata, **kwargs)

    def wait_for_save(self) -> None:
        return self._impl.wait_for_save()

    def get_finished(self, finished_req_ids):
        return self._impl.get_finished(finished_req_ids)

    def get_block_ids_with_load_errors(self):
        return self._impl.get_block_ids_with_load_errors()

    def handle_preemptions(self, kv_connector_metadata=None):
        return self._impl.handle_preemptions(kv_connector_metadata)

    def on_new_request(self, request):
        return self._impl.on_new_request(request)

    def bind_gpu_block_pool(self, gpu_block_pool):
        return self._impl.bind_gpu_block_pool(gpu_block_pool)

    # both
    def get_kv_connector_stats(self):
        return self._impl.get_kv_connector_stats()

    @classmethod
    def build_kv_connector_stats(cls, data: Optional[dict] = None):
        from .metadata import FlexKVStats

        return FlexKVStats(data=dict(data or {})) if FlexKVStats is not None else None

    @classmethod
    def build_prom_metrics(cls, vllm_config, metric_types, labelnames, per_engine_labelvalues):
        """FlexKv's series on vLLM's /metrics (``vllm:flexkv_<name>``, vLLM's labels first); see _prom.py."""
        from ._prom import build

        return build(vllm_config, metric_types, labelnames, per_engine_labelvalues)

    def shutdown(self):
        return self._impl.shutdown()
