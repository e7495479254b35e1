"""``Request`` and ``RequestStatus``: the scheduler-side request object a
connector receives. Block hashes are chained over full blocks with the cache salt and LoRA
name as extra keys, like vLLM's (the hash function itself differs)."""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Optional, Sequence

from vllm.sampling_params import SamplingParams
from vllm.v1.engine import FinishReason


class RequestStatus(enum.IntEnum):
    WAITING = enum.auto()
    WAITING_FOR_FSM = enum.auto()
    WAITING_FOR_REMOTE_KVS = enum.auto()
    RUNNING = enum.auto()
    PREEMPTED = enum.auto()
    # Everything after PREEMPTED is a finished state.
    FINISHED_STOPPED = enum.auto()
    FINISHED_LENGTH_CAPPED = enum.auto()
    FINISHED_ABORTED = enum.auto()
    FINISHED_IGNORED = enum.auto()
    FINISHED_ERROR = enum.auto()

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def is_finished(status: "RequestStatus") -> bool:
        return status > RequestStatus.PREEMPTED

    @staticmethod
    def get_finished_reason(status: "RequestStatus") -> Optional[FinishReason]:
        return _FINISHED_REASON_MAP.get(status)


_FINISHED_REASON_MAP = {
    RequestStatus.FINISHED_STOPPED: FinishReason.STOP,
    RequestStatus.FINISHED_LENGTH_CAPPED: FinishReason.LENGTH,
    RequestStatus.FINISHED_ABORTED: FinishReason.ABORT,
    RequestStatus.FINISHED_IGNORED: FinishReason.LENGTH,
    RequestStatus.FINISHED_ERROR: FinishReason.ERROR,
}


class ConstantList(Sequence):
    """Read-only view of a list (vLLM's ``ConstantList``): a connector cannot edit tokens."""

    def __init__(self, x: list) -> None:
        self._x = x

    def __getitem__(self, item):
        return self._x[item]

    def __len__(self) -> int:
        return len(self._x)

    def __iter__(self):
        return iter(self._x)

    def __contains__(self, item) -> bool:
        return item in self._x

    def index(self, item, *args):
        return self._x.index(item, *args)

    def __repr__(self) -> str:
        return f"ConstantList({self._x})"

    def _deny(self, *a, **k):
        raise TypeError("Cannot modify a ConstantList")

    append = extend = insert = pop = remove = clear = __setitem__ = __delitem__ = _deny


class LoRARequest:
    def __init__(self, lora_name: str, lora_int_id: int, lora_path: str = "") -> None:
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

    def __repr__(self) -> str:
        return f"LoRARequest({self.lora_name!r}, {self.lora_int_id})"


class Request:
    def __init__(self, request_id: str, prompt_token_ids: list[int], sampling_params: Optional[SamplingParams] = None,
                 eos_token_id: Optional[int] = None, client_index: int = 0, lora_request: Optional[LoRARequest] = None,
                 cache_salt: Optional[str] = None, block_size: int = 16) -> None:
        self.request_id = request_id
        self.client_index = client_index
        self.sampling_params = sampling_params or SamplingParams()
        self.eos_token_id = eos_token_id
        self.lora_request = lora_request
        self.cache_salt = cache_salt
        self.status = RequestStatus.WAITING
        self.stop_reason: Any = None
        self.max_tokens = self.sampling_params.max_tokens
        extra = self.sampling_params.extra_args or {}
        self.kv_transfer_params: Optional[dict[str, Any]] = extra.get("kv_transfer_params")

        self.prompt_token_ids = list(prompt_token_ids)
        self.num_prompt_tokens = len(self.prompt_token_ids)
        self._output_token_ids: list[int] = []
        self._all_token_ids: list[int] = list(self.prompt_token_ids)
        self.output_token_ids = ConstantList(self._output_token_ids)
        self.all_token_ids = ConstantList(self._all_token_ids)
        self.spec_token_ids: list[int] = []

        self.num_computed_tokens = 0
        self.num_cached_tokens = -1  # set when first scheduled; includes external tokens
        self.num_external_computed_tokens = 0
        self.num_output_placeholders = 0  # async scheduling only; the harness does not use it
        self.num_preemptions = 0
        self.mm_features: list = []

        self.block_size = block_size
        self.block_hashes: list[bytes] = []
        self.update_block_hashes()

    @property
    def num_tokens(self) -> int:
        return len(self._all_token_ids)

    @property
    def num_tokens_with_spec(self) -> int:
        return len(self._all_token_ids) + len(self.spec_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self._output_token_ids)

    def append_output_token_ids(self, token_ids: int | list[int]) -> None:
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        self._output_token_ids.extend(token_ids)
        self._all_token_ids.extend(token_ids)
        self.update_block_hashes()

    def update_block_hashes(self) -> None:
        """Hashes of the full blocks not hashed yet, each chained on its parent."""
        bs = self.block_size
        extra = repr((self.cache_salt, getattr(self.lora_request, "lora_name", None))).encode()
        while (len(self.block_hashes) + 1) * bs <= len(self._all_token_ids):
            i = len(self.block_hashes)
            parent = self.block_hashes[-1] if self.block_hashes else b""
            blob = parent + repr(self._all_token_ids[i * bs:(i + 1) * bs]).encode() + extra
            self.block_hashes.append(hashlib.sha256(blob).digest())

    def is_finished(self) -> bool:
        return RequestStatus.is_finished(self.status)

    def get_finished_reason(self) -> Optional[FinishReason]:
        return RequestStatus.get_finished_reason(self.status)

    def __repr__(self) -> str:
        return (f"Request({self.request_id!r}, {self.status.name}, tokens={self.num_tokens}, "
                f"computed={self.num_computed_tokens}, external={self.num_external_computed_tokens})")
