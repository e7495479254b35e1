"""vLLM's own ``FlexKVConnectorV1`` wrapper as merged upstream (the 0.16.0 patch
text): imports the impl from the external ``flexkv`` package inside ``__init__``, builds it
with two arguments, and forwards exactly these methods. It does NOT forward ``reset_cache``,
``handle_preemptions`` or ``build_kv_connector_stats`` (those hit the base defaults), nor
``bind_connector_metadata`` (the base keeps the metadata on the wrapper)."""

from __future__ import annotations

from typing import Any, Optional

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1, KVConnectorRole


class FlexKVConnectorV1(KVConnectorBase_V1):
    def __init__(self, vllm_config, role: KVConnectorRole, kv_cache_config=None):
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        try:
            from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl
        except ImportError as e:
            raise ImportError("FlexKV is not installed. Please install it to use FlexKVConnectorV1. "
                              "See https://github.com/taco-project/FlexKV for installation instructions.") from e
        self._flexkv_connector = FlexKVConnectorV1Impl(vllm_config, role)

    def shutdown(self):
        self._flexkv_connector.shutdown()

    def start_load_kv(self, forward_context, **kwargs: Any) -> None:
        self._flexkv_connector.start_load_kv(forward_context, **kwargs)

    def wait_for_layer_load(self, layer_name: str) -> None:
        self._flexkv_connector.wait_for_layer_load(layer_name)

    def save_kv_layer(self, layer_name: str, kv_layer, attn_metadata, **kwargs: Any) -> None:
        self._flexkv_connector.save_kv_layer(layer_name, kv_layer, attn_metadata, **kwargs)

    def wait_for_save(self):
        self._flexkv_connector.wait_for_save()

    def get_finished(self, finished_req_ids: set[str]) -> tuple[Optional[set[str]], Optional[set[str]]]:
        return self._flexkv_connector.get_finished(finished_req_ids)

    def register_kv_caches(self, kv_caches) -> None:
        self._flexkv_connector.register_kv_caches(kv_caches)

    def get_num_new_matched_tokens(self, request, num_computed_tokens: int) -> tuple[Optional[int], bool]:
        return self._flexkv_connector.get_num_new_matched_tokens(request, num_computed_tokens)

    def update_state_after_alloc(self, request, blocks, num_external_tokens: int):
        self._flexkv_connector.update_state_after_alloc(request, blocks, num_external_tokens)

    def build_connector_meta(self, scheduler_output):
        return self._flexkv_connector.build_connector_meta(scheduler_output)

    def update_connector_output(self, connector_output):
        self._flexkv_connector.update_connector_output(connector_output)

    def request_finished(self, request, block_ids: list[int]) -> tuple[bool, Optional[dict[str, Any]]]:
        return self._flexkv_connector.request_finished(request, block_ids)

    def take_events(self):
        return self._flexkv_connector.take_events()

    def get_kv_connector_stats(self):
        return self._flexkv_connector.get_kv_connector_stats()

    def get_block_ids_with_load_errors(self) -> set[int]:
        return self._flexkv_connector.get_block_ids_with_load_errors()
