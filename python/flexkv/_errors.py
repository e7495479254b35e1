"""Exception hierarchy mirroring the C ABI status codes (include/flexkv.h)."""

from __future__ import annotations


class FlexKVError(Exception):
    """Base class of every error raised by the FlexKv package."""

    status = -99

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(FlexKVError, ValueError):
    """A pointer, length or value argument was invalid."""

    status = -1


class InvalidHandleError(FlexKVError, ValueError):
    """The engine or index handle is unknown, stale or already closed."""

    status = -2


class ConfigError(FlexKVError, ValueError):
    """The configuration is malformed or inconsistent."""

    status = -3


class BufferTooSmallError(FlexKVError):
    """An output buffer was too small (handled inside the package)."""

    status = -4


class UnknownRequestError(FlexKVError, LookupError):
    """The request id is not known to the engine."""

    status = -5


class InvalidStateError(FlexKVError, RuntimeError):
    """The call is not allowed in the current state (e.g. a request finished twice)."""

    status = -6


class OutOfMemoryError(FlexKVError, MemoryError):
    """The cache could not be reserved."""

    status = -7


class NotRegisteredError(FlexKVError, RuntimeError):
    """No KV cache is registered with the engine."""

    status = -8


class ShutDownError(FlexKVError, RuntimeError):
    """The engine was shut down."""

    status = -9


class FlexKVIOError(FlexKVError, OSError):
    """An I/O operation failed."""

    status = -10


class NotSupportedError(FlexKVError, NotImplementedError):
    """The operation is not supported in this build or setup."""

    status = -11


class InternalError(FlexKVError, RuntimeError):
    """An unexpected internal error."""

    status = -99


class LibraryNotFoundError(FlexKVError, ImportError):
    """libflexkv.so could not be found or loaded."""


class ForkedProcessError(FlexKVError, RuntimeError):
    """The library was used in a process forked after the .NET runtime started."""


BY_STATUS: dict[int, type[FlexKVError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError, InvalidHandleError, ConfigError, BufferTooSmallError,
        UnknownRequestError, InvalidStateError, OutOfMemoryError, NotRegisteredError,
        ShutDownError, FlexKVIOError, NotSupportedError, InternalError,
    )
}
