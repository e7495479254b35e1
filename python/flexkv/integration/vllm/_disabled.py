"""The connector's two halves when FlexKv is disabled (``ENABLE_FLEXKV=0``): no engine, no
registration, and for vLLM the answers of a cache that holds nothing, so requests run exactly
as without a connector."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ...config import flexkv_enabled
from . import _log


def disabled_halves(vllm_config, scheduler: bool) -> Optional[tuple]:
    """(scheduler half, worker half) stand-ins when FlexKv is disabled, else None."""
    ktc = getattr(vllm_config, "kv_transfer_config", None)
    if flexkv_enabled(overrides=getattr(ktc, "kv_connector_extra_config", None)):
        return None
    _log.logger.info("FlexKv is disabled (ENABLE_FLEXKV=0 or enable_flexkv: false): the connector does nothing")
    return (DisabledScheduler(), None) if scheduler else (None, DisabledWorker())


class DisabledScheduler:
    """Scheduler half: nothing matches, nothing is held, nothing is ever owed to vLLM."""

    registration = None

    def get_num_new_matched_tokens(self, request, num_computed_tokens: int) -> Tuple[int, bool]:
        return 0, False

    def update_state_after_alloc(self, request, blocks, num_external_tokens: int) -> None:
        pass

    def build_connector_meta(self, scheduler_output) -> Any:
        from .metadata import FlexKVConnectorMetadata

        return FlexKVConnectorMetadata()

    def update_connector_output(self, connector_output) -> None:
        pass

    def request_finished(self, request, block_ids) -> Tuple[bool, Optional[dict]]:
        return False, None

    def on_new_request(self, request) -> None:
        pass

    def take_events(self) -> list:
        return []

    def step_stats(self):
        return None

    def is_ready(self) -> bool:
        return True

    def reset_cache(self) -> bool:
        return True  # there is nothing cached to drop

    def shutdown(self) -> None:
        pass


class DisabledWorker:
    """Worker half: registers nothing, reports no load errors and no stats."""

    registration = None

    def register_kv_caches(self, kv_caches) -> None:
        pass

    def get_block_ids_with_load_errors(self) -> set:
        return set()

    def load_errors(self, metadata=None) -> set:
        return set()

    def stats(self, metadata=None):
        return None
