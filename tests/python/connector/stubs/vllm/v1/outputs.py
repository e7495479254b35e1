"""``KVConnectorOutput`` (outputs.py @ 0087e00) and the ``ModelRunnerOutput`` fields
the scheduler reads back from a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorStats


@dataclass
class KVConnectorOutput:
    finished_sending: Optional[set[str]] = None
    finished_recving: Optional[set[str]] = None
    kv_connector_stats: Optional["KVConnectorStats"] = None
    invalid_block_ids: set[int] = field(default_factory=set)
    # A worker may change how many reports complete an id (0 = keep the default).
    expected_finished_count: int = 0
    kv_cache_events: Optional[Any] = None
    kv_connector_worker_meta: Optional[Any] = None

    def is_empty(self) -> bool:
        # Plain truthiness as in vLLM: any stats object counts, even one whose is_empty() is True.
        return (not self.finished_sending and not self.finished_recving and not self.kv_connector_stats
                and not self.invalid_block_ids and not self.kv_cache_events and not self.kv_connector_worker_meta)


@dataclass
class ModelRunnerOutput:
    req_ids: list[str] = field(default_factory=list)
    req_id_to_index: dict[str, int] = field(default_factory=dict)
    # One list per request: the tokens sampled this step (empty for a partial prefill chunk).
    sampled_token_ids: list[list[int]] = field(default_factory=list)
    kv_connector_output: Optional[KVConnectorOutput] = None


EMPTY_MODEL_RUNNER_OUTPUT = ModelRunnerOutput()
