"""A minimal RESP2 client over a plain socket (TLS for rediss://): enough for the doctor's PING,
AUTH, CONFIG GET and INFO with bounded timeouts, so ``flexkv check`` needs no Redis package."""

from __future__ import annotations

import socket
import ssl
from typing import Any, List, Optional


class RespError(Exception):
    """An error reply from the server (``-ERR ...``, ``-NOAUTH ...``, ``-WRONGPASS ...``)."""


class RespClient:
    """One connection; every call waits at most ``timeout`` seconds."""

    def __init__(self, host: str, port: int, timeout: float, tls: bool = False) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(timeout)
        self._sock = sock
        self._file = sock.makefile("rb")

    def command(self, *args: Any) -> Any:
        parts = [str(a).encode("utf-8") if not isinstance(a, bytes) else a for a in args]
        frame = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self._sock.sendall(frame)
        return self._reply()

    def _line(self) -> bytes:
        line = self._file.readline(1 << 20)
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the server closed the connection")
        return line[:-2]

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            raise RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("the server closed the connection")
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError(f"not a RESP reply: {line[:40]!r}")

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RespClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def config_get(client: RespClient, name: str) -> Optional[str]:
    """CONFIG GET ``name``'s value (None when the server has no such parameter)."""
    reply: List[str] = client.command("CONFIG", "GET", name) or []
    return reply[1] if len(reply) >= 2 else None


def info_fields(text: str) -> dict:
    """``INFO``'s ``key:value`` lines as a dict."""
    out = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out
