"""``KVConnectorBase_V1`` and its supporting types (base.py @ 13f4ad0 / 003df29).

The constructor is the 0.12–~0.20 one (third argument optional, deprecation warning when it is
None). The seven abstract methods are abstract as in vLLM, so a connector missing one cannot be
instantiated; every other method has vLLM's default."""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Optional

if TYPE_CHECKING:
    import torch

    from vllm.config import VllmConfig
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorStats
    from vllm.v1.core.kv_cache_manager import KVCacheBlocks
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.kv_cache_interface import KVCacheConfig
    from vllm.v1.outputs import KVConnectorOutput
    from vllm.v1.request import Request

logger = logging.getLogger(__name__)

CopyBlocksOp = Callable[[dict, dict, list, list, Literal["h2d", "d2h"]], None]


class KVConnectorRole(enum.Enum):
    SCHEDULER = 0  # the instance in the scheduler (EngineCore) process
    WORKER = 1  # the instance in each worker process


class KVConnectorMetadata(ABC):  # noqa: B024 (an empty marker, instantiable as-is)
    """Per-step scheduler -> worker instructions; must be picklable."""


class KVConnectorHandshakeMetadata(ABC):  # noqa: B024
    """Out-of-band P/D handshake data (NIXL); unused by offloading connectors."""


class KVConnectorWorkerMetadata(ABC):
    """Worker -> scheduler metadata (approx. 0.14+), merged across workers."""

    @abstractmethod
    def aggregate(self, other: "KVConnectorWorkerMetadata") -> "KVConnectorWorkerMetadata":
        raise NotImplementedError


class SupportsHMA(ABC):
    """Mix-in: the connector handles several KV cache groups (0.12+)."""

    @abstractmethod
    def request_finished_all_groups(self, request: "Request",
                                    block_ids: tuple[list[int], ...]) -> tuple[bool, Optional[dict[str, Any]]]:
        raise NotImplementedError


def supports_hma(connector: Any) -> bool:
    if isinstance(connector, type):
        return issubclass(connector, SupportsHMA)
    return isinstance(connector, SupportsHMA)


class KVConnectorBase_V1(ABC):
    def __init__(self, vllm_config: "VllmConfig", role: KVConnectorRole,
                 kv_cache_config: Optional["KVCacheConfig"] = None):
        logger.warning("Initializing KVConnectorBase_V1. This API is experimental and subject to change in the "
                       "future as we iterate the design.")
        self._connector_metadata: Optional[KVConnectorMetadata] = None
        self._vllm_config = vllm_config
        if vllm_config.kv_transfer_config is not None:
            self._kv_transfer_config = vllm_config.kv_transfer_config
        else:
            raise ValueError("kv_transfer_config must be set for KVConnectorBase_V1")
        self._kv_cache_config = kv_cache_config
        if self._kv_cache_config is None:
            logger.warning("KVConnectorBase_V1 initialized without kv_cache_config. This is deprecated - please "
                           "update your connector to accept kv_cache_config as the third constructor argument "
                           "and pass it to super().__init__().")
        self._role = role
        self.use_eagle_prefix_cache_hashing = False

    @property
    def role(self) -> KVConnectorRole:
        return self._role

    # ---- worker-side helpers (not to be overridden) ---------------------------------------

    def bind_connector_metadata(self, connector_metadata: KVConnectorMetadata) -> None:
        self._connector_metadata = connector_metadata

    def clear_connector_metadata(self) -> None:
        self._connector_metadata = None

    def _get_connector_metadata(self) -> KVConnectorMetadata:
        # Should only be called while the model runner has bound metadata for the step.
        assert self._connector_metadata is not None
        return self._connector_metadata

    def has_connector_metadata(self) -> bool:
        return self._connector_metadata is not None

    # ---- worker side ----------------------------------------------------------------------

    def register_kv_caches(self, kv_caches: dict[str, "torch.Tensor"]) -> None:
        return

    def register_cross_layers_kv_cache(self, kv_cache: "torch.Tensor", attn_backend: type) -> None:
        return

    def set_host_xfer_buffer_ops(self, copy_operation: CopyBlocksOp) -> None:
        return

    def handle_preemptions(self, kv_connector_metadata: Any) -> None:
        # Before ~0.18 the argument was set[str] of preempted ids; now the step's metadata.
        return

    @abstractmethod
    def start_load_kv(self, forward_context: Any, **kwargs: Any) -> None:
        pass

    @abstractmethod
    def wait_for_layer_load(self, layer_name: str) -> None:
        pass

    @abstractmethod
    def save_kv_layer(self, layer_name: str, kv_layer: "torch.Tensor", attn_metadata: Any, **kwargs: Any) -> None:
        pass

    @abstractmethod
    def wait_for_save(self) -> None:
        pass

    def get_finished(self, finished_req_ids: set[str]) -> tuple[Optional[set[str]], Optional[set[str]]]:
        return None, None

    def get_block_ids_with_load_errors(self) -> set[int]:
        return set()

    def shutdown(self) -> None:
        return None

    def get_kv_connector_stats(self) -> Optional["KVConnectorStats"]:
        return None

    def get_kv_connector_kv_cache_events(self) -> Any:
        return None

    def build_connector_worker_meta(self) -> Optional[KVConnectorWorkerMetadata]:
        return None

    def get_handshake_metadata(self) -> Optional[KVConnectorHandshakeMetadata]:
        return None

    # ---- scheduler side -------------------------------------------------------------------

    @abstractmethod
    def get_num_new_matched_tokens(self, request: "Request", num_computed_tokens: int) -> tuple[Optional[int], bool]:
        pass

    @abstractmethod
    def update_state_after_alloc(self, request: "Request", blocks: "KVCacheBlocks", num_external_tokens: int):
        pass

    @abstractmethod
    def build_connector_meta(self, scheduler_output: "SchedulerOutput") -> KVConnectorMetadata:
        pass

    def update_connector_output(self, connector_output: "KVConnectorOutput") -> None:
        return

    def request_finished(self, request: "Request", block_ids: list[int]) -> tuple[bool, Optional[dict[str, Any]]]:
        return False, None

    def take_events(self) -> Iterable[Any]:
        return ()

    def reset_cache(self) -> Optional[bool]:
        return None

    def bind_gpu_block_pool(self, gpu_block_pool: Any) -> None:
        return

    def on_new_request(self, request: "Request") -> None:
        return

    def has_pending_push_work(self) -> bool:
        return False

    def set_xfer_handshake_metadata(self, metadata: dict[int, KVConnectorHandshakeMetadata]) -> None:
        return

    def get_finished_count(self) -> Optional[int]:
        return None

    # ---- class-level hooks ----------------------------------------------------------------

    @classmethod
    def get_required_kvcache_layout(cls, vllm_config: "VllmConfig") -> Optional[str]:
        return None

    @classmethod
    def build_kv_connector_stats(cls, data: Optional[dict[str, Any]] = None) -> Optional["KVConnectorStats"]:
        return None

    @classmethod
    def build_prom_metrics(cls, vllm_config, metric_types, labelnames, per_engine_labelvalues) -> Any:
        return None

    @classmethod
    def requires_piecewise_for_cudagraph(cls, extra_config: dict[str, Any]) -> bool:
        return False

    @property
    def prefer_cross_layer_blocks(self) -> bool:
        return False

    @property
    def requires_kv_delivery(self) -> bool:
        return self._kv_transfer_config.is_kv_producer

    @property
    def supports_eagle_prefix_cache_hashing(self) -> bool:
        return False
