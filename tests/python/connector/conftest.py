"""Puts the stub ``vllm`` (stubs/) first on sys.path for the connector tests and provides
VllmConfig and Engine factories.

pytest imports this file before collecting the test modules of this folder, so their
module-level ``import vllm`` gets the stub. sys.path is process-wide: other test folders
see the stub too, which is harmless (nothing else imports vllm) and refused below if a real
vLLM was imported first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

STUBS = str(Path(__file__).resolve().parent / "stubs")
if STUBS not in sys.path:
    sys.path.insert(0, STUBS)

import vllm  # noqa: E402

if getattr(vllm, "__version__", None) != "0.0.0-stub":
    raise RuntimeError(f"tests/python/connector needs the stub vllm, but {vllm.__file__} was imported first")

from vllm.config import (CacheConfig, KVEventsConfig, KVTransferConfig, ModelConfig, ParallelConfig,  # noqa: E402
                         SchedulerConfig, VllmConfig)
from vllm.distributed import parallel_state  # noqa: E402
from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory  # noqa: E402

from .harness import Engine  # noqa: E402

# FlexKv engine options every test wants: small, no huge pages, few threads.
DEFAULT_EXTRA = {"num_cpu_blocks": 256, "use_hugepage_cpu_buffer": False, "transfer_threads": 2}


def build_vllm_config(*, model: str = "stub/tiny-model", dtype: torch.dtype = torch.float16, block_size: int = 16,
                      num_layers: int = 2, num_kv_heads: int = 2, head_size: int = 8, use_mla: bool = False,
                      tp: int = 1, extra_config: dict | None = None, kv_connector: str | None = "FlexKVConnectorV1",
                      kv_connector_module_path: str | None = None, kv_load_failure_policy: str = "recompute",
                      max_num_batched_tokens: int = 2048, max_num_seqs: int = 256, enable_chunked_prefill: bool = True,
                      cache_dtype: str = "auto", async_scheduling: bool = False, executor_backend: str | None = None,
                      dp_size: int = 1, dp_rank: int = 0, kv_events: bool = False) -> VllmConfig:
    """A VllmConfig for the harness; ``kv_connector=None`` means no KV connector at all;
    ``async_scheduling`` selects vLLM's AsyncScheduler and batch-queue step order; ``kv_events``
    is vLLM's --kv-events-config '{"enable_kv_cache_events": true, "publisher": "zmq"}'."""
    ktc = None
    if kv_connector is not None:
        ktc = KVTransferConfig(kv_connector=kv_connector, kv_role="kv_both",
                               kv_connector_extra_config={**DEFAULT_EXTRA, **(extra_config or {})},
                               kv_connector_module_path=kv_connector_module_path,
                               kv_load_failure_policy=kv_load_failure_policy)
    return VllmConfig(
        model_config=ModelConfig(model=model, dtype=dtype, num_layers=num_layers, num_kv_heads=num_kv_heads,
                                 head_size=head_size, use_mla=use_mla),
        cache_config=CacheConfig(block_size=block_size, cache_dtype=cache_dtype),
        parallel_config=ParallelConfig(tensor_parallel_size=tp, data_parallel_size=dp_size, data_parallel_rank=dp_rank,
                                       distributed_executor_backend=executor_backend or ("uni" if tp == 1 else "mp")),
        kv_transfer_config=ktc,
        scheduler_config=SchedulerConfig(max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                                         enable_chunked_prefill=enable_chunked_prefill,
                                         async_scheduling=async_scheduling),
        kv_events_config=KVEventsConfig(enable_kv_cache_events=True, publisher="zmq") if kv_events else None,
    )


@pytest.fixture
def make_vllm_config():
    return build_vllm_config


@pytest.fixture
def vllm_config():
    return build_vllm_config()


@pytest.fixture
def make_engine():
    """Factory: ``make_engine(vllm_config, num_gpu_blocks=..., layout=..., **engine_options)``;
    every engine is closed (connectors shut down) after the test."""
    made: list[Engine] = []

    def make(config: VllmConfig | None = None, **kw) -> Engine:
        eng = Engine(config or build_vllm_config(), **kw)
        made.append(eng)
        return eng

    yield make
    for eng in reversed(made):
        eng.close()


@pytest.fixture(autouse=True)
def _vllm_globals():
    """Plugins may register connector names and tests may switch factory behaviour or ranks:
    every test starts from vLLM's defaults."""
    registry = dict(KVConnectorFactory._registry)
    path_first = KVConnectorFactory.module_path_first
    yield
    KVConnectorFactory._registry.clear()
    KVConnectorFactory._registry.update(registry)
    KVConnectorFactory.module_path_first = path_first
    parallel_state.set_rank(0, 1)
