"""Masking of credentials before configuration values reach a log line, stats or an exception.

The rule for URLs is the engine's (``FlexKv.Core.Config.Redaction``): within each URL of a
comma-separated list everything between "://" and the last '@' is user information, and its
password part becomes ``***``; so a password holding '@', ',' or "://" never leaks in part.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

MASK = "***"

# Keys whose values are secrets wherever they appear (ours and FlexKV's, e.g. Mooncake's auth).
_SECRET_KEY = re.compile(r"password|passwd|secret|auth|token|credential", re.IGNORECASE)
# A new URL of a list starts after a ',' followed by "scheme://"; any other ',' is inside a URL.
_URL_START = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.\-]*://)")
_QUERY_SECRET = re.compile(r"([?&](?:password|pass|pwd|auth|secret)=)[^&]*", re.IGNORECASE)


def _redact_one(url: str) -> str:
    scheme = url.find("://")
    start = 0 if scheme < 0 else scheme + 3
    at = url.rfind("@")
    if at >= start:
        userinfo = url[start:at]
        user, sep, _ = userinfo.partition(":")
        # A lone user-information part is a password (redis://secret@host), as the engine reads it.
        url = url[:start] + (user + ":" + MASK if sep else MASK) + url[at:]
    return _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, url)


def redact_url(url: Any) -> Any:
    """``url`` (one URL or a comma-separated list) with every password replaced by ``***``;
    user names, hosts, ports and paths stay readable. Non-strings are returned unchanged."""
    if not isinstance(url, str) or not url:
        return url
    parts, start = [], 0
    for m in _URL_START.finditer(url):
        parts.append(_redact_one(url[start:m.start() + 1]))
        start = m.start() + 1
    parts.append(_redact_one(url[start:]))
    return "".join(parts)


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redacted(cfg: Mapping[str, Any]) -> dict:
    """A copy of a configuration (engine keys, FlexKV keys, nested sections) that is safe to log:
    secret values (``redis_password``, ``secret``, …) become ``***`` and URL credentials are
    masked. Empty secrets stay empty, so the log still shows that none was set."""
    out = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            out[key] = redacted(value)
        elif is_secret_key(key) and value not in (None, ""):
            out[key] = MASK
        elif key == "remote_url" or (isinstance(value, str) and "://" in value and "@" in value):
            out[key] = redact_url(value)
        else:
            out[key] = value
    return out
