"""The few SamplingParams fields a connector may read: ``extra_args`` carries the
client's ``kv_transfer_params``."""

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class SamplingParams:
    max_tokens: Optional[int] = 16
    temperature: float = 0.0
    extra_args: Optional[dict[str, Any]] = field(default=None)
