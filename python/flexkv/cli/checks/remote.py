"""Whether the remote tier (Redis or Valkey) is reachable with the configured credentials, and
whether its memory limit and eviction policy suit a cache that only writes (FlexKv never
deletes: the server must evict). Every URL is printed redacted."""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import unquote, urlsplit

from ...config import redact_url
from . import FAIL, OK, SKIP, WARN, Result
from .resp import RespClient, RespError, config_get, info_fields

MAX_TIMEOUT_S = 5.0  # a doctor answers promptly even when remote_timeout_ms is long


def urls_of(cfg: Optional[Dict[str, Any]], override: Optional[str]) -> List[str]:
    """The remote URL list as the engine resolves it (remote_url, else redis_host/redis_port)."""
    if override:
        spec = override
    elif cfg and str(cfg.get("remote_url") or "").strip():
        spec = cfg["remote_url"]
    elif cfg and cfg.get("redis_port"):
        spec = f"redis://{cfg.get('redis_host') or '127.0.0.1'}:{cfg['redis_port']}"
    else:
        return []
    return [u.strip() for u in spec.split(",") if u.strip()]


def check(cfg: Optional[Dict[str, Any]], override: Optional[str] = None) -> List[Result]:
    urls = urls_of(cfg, override)
    if not urls:
        return [Result("remote", SKIP, "no remote tier configured (remote_url) and no --remote-url")]
    cfg = cfg or {}
    timeout = min(cfg.get("remote_timeout_ms", 2000) / 1000.0, MAX_TIMEOUT_S)
    return [_one(u, cfg, timeout) for u in urls]


def _one(url: str, cfg: Dict[str, Any], timeout: float) -> Result:
    shown = redact_url(url)
    bad = Result("remote", FAIL, f"{shown} is not redis://host:port or rediss://host:port", "fix remote_url")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a malformed IPv6 address
        return bad
    if parts.scheme not in ("redis", "rediss") or not host or not port:
        return bad
    user = unquote(parts.username) if parts.username and parts.password is not None else None
    password = unquote(parts.password) if parts.password is not None else (unquote(parts.username) if parts.username else None)
    password = cfg.get("redis_password") or password  # the engine lets redis_password win
    user = cfg.get("remote_user") or user
    try:
        with RespClient(host, port, timeout, tls=parts.scheme == "rediss") as c:
            if password:
                try:
                    c.command(*(("AUTH", user, password) if user else ("AUTH", password)))
                except RespError as e:
                    return Result("remote", FAIL, f"{shown}: authentication refused ({_code(e)})",
                                  "check redis_password / remote_user or the URL's credentials")
            try:
                c.command("PING")
            except RespError as e:
                return Result("remote", FAIL, f"{shown} answers but refuses commands ({_code(e)})",
                              "set redis_password (and remote_user for an ACL user)")
            info = info_fields(c.command("INFO", "server"))
            name = f"Valkey {info['valkey_version']}" if "valkey_version" in info else f"Redis {info.get('redis_version', '?')}"
            try:
                maxmemory = int(config_get(c, "maxmemory") or 0)
                policy = config_get(c, "maxmemory-policy") or "?"
            except RespError as e:
                return Result("remote", WARN, f"{shown} ({name}) answers, but its maxmemory and eviction policy cannot "
                              f"be read ({_code(e)}: CONFIG is not allowed)",
                              "make sure it evicts (maxmemory set, maxmemory-policy allkeys-lru)")
    except (OSError, ConnectionError) as e:
        return Result("remote", FAIL, f"{shown} is not reachable: {getattr(e, 'strerror', None) or e or type(e).__name__}",
                      "start Redis/Valkey there, or fix remote_url (host, port, rediss:// for TLS)")
    return _verdict(shown, name, maxmemory, policy, cfg)


def _verdict(shown: str, name: str, maxmemory: int, policy: str, cfg: Dict[str, Any]) -> Result:
    what = f"{shown} ({name}): maxmemory {_size(maxmemory)}, {policy}"
    if policy == "noeviction":
        return Result("remote", WARN, f"{what}: when full it refuses FlexKv's writes",
                      "CONFIG SET maxmemory-policy allkeys-lru")
    if policy.startswith("volatile-") and not cfg.get("remote_ttl_s"):
        return Result("remote", WARN, f"{what}: it evicts only keys with an expiry, and FlexKv's have none "
                      "(remote_ttl_s is 0)", "CONFIG SET maxmemory-policy allkeys-lru, or set remote_ttl_s")
    if maxmemory == 0:
        return Result("remote", WARN, f"{what}: no memory limit, so it grows until the machine runs out",
                      "CONFIG SET maxmemory <bytes> (and maxmemory-policy allkeys-lru)")
    return Result("remote", OK, what)


def _code(e: Exception) -> str:
    """The error's code word only (WRONGPASS, NOAUTH, NOPERM, ERR): the rest may echo input."""
    return str(e).split(" ", 1)[0] or "error"


def _size(n: int) -> str:
    return "0 (unlimited)" if n == 0 else f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"
