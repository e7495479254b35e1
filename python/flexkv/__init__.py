"""FlexKv: a multi-tier KV-cache manager for LLM inference (vLLM connector ``FlexKVConnectorV1``).

Importing the package needs only the standard library; the native engine is loaded on first use.
"""

from ._errors import (
    BufferTooSmallError, ConfigError, FlexKVError, FlexKVIOError, ForkedProcessError, InternalError,
    InvalidArgumentError, InvalidHandleError, InvalidStateError, LibraryNotFoundError, NotRegisteredError,
    NotSupportedError, OutOfMemoryError, ShutDownError, UnknownRequestError,
)
from .config import apply_log_level as _apply_log_level
from .config import load_config
from .manager import FinishedTasks, KVLayer, KVManager, PrefixIndex

_apply_log_level()  # FLEXKV_LOG_LEVEL, read as FlexKV does: when the package is imported

__version__ = "0.1.0"

__all__ = [
    "KVManager", "KVLayer", "FinishedTasks", "PrefixIndex", "load_config",
    "FlexKVError", "ConfigError", "InvalidArgumentError", "InvalidHandleError", "BufferTooSmallError",
    "UnknownRequestError", "InvalidStateError", "OutOfMemoryError", "NotRegisteredError", "ShutDownError",
    "FlexKVIOError", "NotSupportedError", "InternalError", "LibraryNotFoundError", "ForkedProcessError",
]
