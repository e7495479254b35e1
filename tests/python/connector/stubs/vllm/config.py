"""``vllm.config`` as plain dataclasses: the fields and methods a KV connector reads
(KVTransferConfig, parallel, model and cache configs). Real vLLM uses pydantic dataclasses
with many more fields; here only the ones a connector touches exist, so reading anything else
fails loudly instead of returning a guess."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Optional

import torch


@dataclass
class ModelConfig:
    model: str = "stub/tiny-model"
    dtype: torch.dtype = torch.float16
    # Whole-model geometry; the getters below return the per-rank view like vLLM's do.
    num_layers: int = 2
    num_kv_heads: int = 2
    head_size: int = 8
    use_mla: bool = False
    max_model_len: int = 4096

    @property
    def hf_text_config(self) -> SimpleNamespace:
        return SimpleNamespace(num_hidden_layers=self.num_layers, num_key_value_heads=self.num_kv_heads,
                               head_dim=self.head_size)

    def get_num_layers(self, parallel_config: "ParallelConfig") -> int:
        # Layers of one pipeline stage (vLLM splits layers across PP ranks).
        return self.num_layers // parallel_config.pipeline_parallel_size

    def get_total_num_kv_heads(self) -> int:
        return 1 if self.use_mla else self.num_kv_heads

    def get_num_kv_heads(self, parallel_config: "ParallelConfig") -> int:
        # Per TP rank, at least one (vLLM replicates KV heads when tp > heads); MLA has one latent.
        if self.use_mla:
            return 1
        return max(1, self.num_kv_heads // parallel_config.tensor_parallel_size)

    def get_head_size(self) -> int:
        return self.head_size


@dataclass
class CacheConfig:
    block_size: int = 16
    cache_dtype: str = "auto"
    enable_prefix_caching: bool = True
    num_gpu_blocks: Optional[int] = None


@dataclass
class ParallelConfig:
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    data_parallel_rank: int = 0
    # vLLM sets "uni" for one worker unless the user asks for "mp" or "ray" (or a class).
    distributed_executor_backend: str = "uni"

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


@dataclass
class SchedulerConfig:
    max_num_batched_tokens: int = 2048
    max_num_seqs: int = 256
    enable_chunked_prefill: bool = True
    async_scheduling: bool = False
    # None = "not set by the user": VllmConfig turns HMA off when a KV connector is configured
    # (0.10.x forces it, newer versions auto-disable it for non-HMA connectors).
    disable_hybrid_kv_cache_manager: Optional[bool] = None


_ROLES = ("kv_producer", "kv_consumer", "kv_both")


@dataclass
class KVTransferConfig:
    kv_connector: Optional[str] = "FlexKVConnectorV1"
    # vLLM's default is None and it raises when a connector is set without a role; the stub
    # defaults to the role an offloading cache uses.
    kv_role: Optional[str] = "kv_both"
    engine_id: Optional[str] = None
    kv_buffer_device: Optional[str] = "cuda"
    kv_buffer_size: float = 1e9
    kv_rank: Optional[int] = None
    kv_parallel_size: int = 1
    kv_ip: str = "127.0.0.1"
    kv_port: int = 14579
    kv_connector_extra_config: dict[str, Any] = field(default_factory=dict)
    kv_connector_module_path: Optional[str] = None
    enable_permute_local_kv: bool = False
    # "recompute" as introduced (approx. 0.12); 2026 vLLM defaults to "fail".
    kv_load_failure_policy: str = "recompute"

    def __post_init__(self) -> None:
        if self.engine_id is None:
            self.engine_id = str(uuid.uuid4())
        if self.kv_connector is not None and self.kv_role not in _ROLES:
            raise ValueError(f"Unsupported kv_role: {self.kv_role}. Supported roles are {_ROLES}")
        if self.kv_load_failure_policy not in ("recompute", "fail"):
            raise ValueError(f"kv_load_failure_policy must be 'recompute' or 'fail', got {self.kv_load_failure_policy!r}")

    @property
    def is_kv_transfer_instance(self) -> bool:
        return self.kv_connector is not None and self.kv_role in _ROLES

    @property
    def is_kv_producer(self) -> bool:
        return self.kv_connector is not None and self.kv_role in ("kv_producer", "kv_both")

    @property
    def is_kv_consumer(self) -> bool:
        return self.kv_connector is not None and self.kv_role in ("kv_consumer", "kv_both")

    def get_from_extra_config(self, key: str, default: Any) -> Any:
        return self.kv_connector_extra_config.get(key, default)


@dataclass
class KVEventsConfig:
    """vLLM's --kv-events-config: KV cache events are published (and connectors asked for theirs)
    only when enable_kv_cache_events is set."""

    enable_kv_cache_events: bool = False
    publisher: str = "null"
    endpoint: str = "tcp://*:5557"
    replay_endpoint: Optional[str] = None
    buffer_steps: int = 10_000
    hwm: int = 100_000
    max_queue_size: int = 100_000
    topic: str = ""


@dataclass
class VllmConfig:
    model_config: ModelConfig = field(default_factory=ModelConfig)
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    parallel_config: ParallelConfig = field(default_factory=ParallelConfig)
    kv_transfer_config: Optional[KVTransferConfig] = None
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    kv_events_config: Optional[KVEventsConfig] = None

    def __post_init__(self) -> None:
        if self.scheduler_config.disable_hybrid_kv_cache_manager is None:
            self.scheduler_config.disable_hybrid_kv_cache_manager = self.kv_transfer_config is not None
