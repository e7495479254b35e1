"""Configuration as FlexKV users know it, turned into the engine's one JSON document.

Sources, lowest to highest priority: built-in defaults; environment variables
(``FLEXKV_CPU_CACHE_GB``, …) — ignored, as in FlexKV, when ``FLEXKV_CONFIG_PATH`` names a
file; the file's keys (YAML or JSON); explicit overrides (for vLLM: ``kv_connector_extra_config``).
Every value is validated here with a message naming the key; the engine checks again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from ._errors import ConfigError

DEFAULT_CPU_CACHE_GB = 16.0


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean, got {v!r}")


def _positive_float(v: Any) -> float:
    f = float(v)
    if not f > 0 or f != f or f == float("inf"):
        raise ValueError(f"must be > 0, got {v!r}")
    return f


def _non_negative_float(v: Any) -> float:
    f = float(v)
    if not f >= 0 or f == float("inf"):
        raise ValueError(f"must be >= 0, got {v!r}")
    return f


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"must be a positive integer, got {v!r}")
    i = int(v)
    if i <= 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return i


def _non_negative_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"must be an integer, got {v!r}")
    i = int(v)
    if i < 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return i


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {v!r}")
    return v


def _fraction(v: Any) -> float:
    f = float(v)
    if not 0 < f <= 1:
        raise ValueError(f"must be in (0, 1], got {v!r}")
    return f


# Engine keys: name -> converter. These cross to the engine unchanged.
ENGINE_KEYS: Dict[str, Callable[[Any], Any]] = {
    "tokens_per_block": _positive_int,
    "cpu_cache_gb": _positive_float,
    "num_cpu_blocks": _positive_int,
    "block_bytes": _positive_int,
    "num_layers": _positive_int,
    "num_kv_heads": _positive_int,
    "head_size": _positive_int,
    "dtype": _str,
    "use_mla": _bool,
    "model_name": _str,
    "layout": _str,
    "tp_size": _positive_int,
    "tp_rank": _non_negative_int,
    "secret": _str,
    "transfer_threads": _positive_int,
    "transfer_queue_capacity": _positive_int,
    "use_hugepage_cpu_buffer": _bool,
    "cuda_batch_copy": _bool,
    "eviction_policy": _str,
    "ssd_cache_gb": _non_negative_float,
    "ssd_cache_dir": _str,
    "ssd_persist": _bool,
    "ssd_direct_io": _bool,
    "remote_url": _str,
    "redis_host": _str,
    "redis_port": _non_negative_int,
    "redis_password": _str,
    "remote_user": _str,
    "remote_prefix": _str,
    "remote_ttl_s": _non_negative_int,
    "remote_lookup_budget_ms": _non_negative_int,
    "remote_timeout_ms": _positive_int,
    "remote_max_inflight_mb": _positive_int,
    "remote_drop_on_reset": _bool,
    "max_memory_fraction": _fraction,
}

# FlexKV keys for tiers and features this build does not have: accepted while off, so a FlexKV
# user's file loads; turning one on is an error rather than a silent no-op.
OFF_ONLY_KEYS: Dict[str, Callable[[Any], Any]] = {
    "enable_gds": _bool,
    "enable_nixl": _bool,
    "enable_p2p_cpu": _bool,
    "enable_p2p_ssd": _bool,
    "enable_3rd_remote": _bool,
    "use_mooncake_store_backend": _bool,
    "use_hugepage_tmp_buffer": _bool,
}

# FlexKV keys that only matter to FlexKV's own processes; accepted and ignored.
IGNORED_KEYS = {"hugepage_size_bytes", "num_tmp_cpu_blocks", "enable_cpu",
                "server_recv_port", "index_accel", "log_level"}

# Environment variables read when no config file is given: env name -> key.
ENV_KEYS = {
    "FLEXKV_CPU_CACHE_GB": "cpu_cache_gb",
    "FLEXKV_NUM_CPU_BLOCKS": "num_cpu_blocks",
    "FLEXKV_SSD_CACHE_GB": "ssd_cache_gb",
    "FLEXKV_SSD_CACHE_DIR": "ssd_cache_dir",
    "FLEXKV_SSD_PERSIST": "ssd_persist",
    "FLEXKV_TOKENS_PER_BLOCK": "tokens_per_block",
    "FLEXKV_USE_HUGEPAGE_CPU_BUFFER": "use_hugepage_cpu_buffer",
    "FLEXKV_CUDA_BATCH_COPY": "cuda_batch_copy",
    "FLEXKV_ENABLE_GDS": "enable_gds",
    "FLEXKV_EVICTION_POLICY": "eviction_policy",
    "FLEXKV_TRANSFER_THREADS": "transfer_threads",
    "FLEXKV_SECRET": "secret",
    "FLEXKV_REMOTE_URL": "remote_url",
    "FLEXKV_REMOTE_PASSWORD": "redis_password",
    "FLEXKV_REMOTE_USER": "remote_user",
    "FLEXKV_REMOTE_PREFIX": "remote_prefix",
    "FLEXKV_REMOTE_TTL_S": "remote_ttl_s",
    "FLEXKV_REMOTE_LOOKUP_BUDGET_MS": "remote_lookup_budget_ms",
    "FLEXKV_REMOTE_TIMEOUT_MS": "remote_timeout_ms",
    "FLEXKV_REMOTE_MAX_INFLIGHT_MB": "remote_max_inflight_mb",
    "FLEXKV_REMOTE_DROP_ON_RESET": "remote_drop_on_reset",
}


def read_config_file(path: str | os.PathLike) -> Dict[str, Any]:
    """Reads a JSON or YAML config file into a dict (keys unchecked)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"FLEXKV_CONFIG_PATH: {p} does not exist or is not a file")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yml", ".yaml"):
            try:
                import yaml  # lazily: only YAML users need PyYAML
            except ImportError as e:
                raise ConfigError(f"{p} is YAML but PyYAML is not installed; install it or use JSON") from e
            data = yaml.safe_load(text)
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{p}: config files must end in .json, .yml or .yaml")
    except ConfigError:
        raise
    except Exception as e:  # parse errors of either format
        raise ConfigError(f"cannot parse {p}: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(overrides: Optional[Mapping[str, Any]] = None,
                env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """Builds the validated engine configuration dict.

    ``env`` defaults to ``os.environ``; ``overrides`` win over everything else.
    """
    env = os.environ if env is None else env
    raw: Dict[str, Any] = {}
    path = env.get("FLEXKV_CONFIG_PATH")
    if path:
        raw.update(read_config_file(path))
    else:
        for name, key in ENV_KEYS.items():
            if env.get(name, "") != "":
                raw[key] = env[name]
    if overrides:
        raw.update(overrides)
    return normalize(raw)


def normalize(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """Validates keys and values and returns what the engine receives."""
    out: Dict[str, Any] = {}
    for key, value in raw.items():
        if key in ENGINE_KEYS:
            conv = ENGINE_KEYS[key]
        elif key in OFF_ONLY_KEYS:
            conv = OFF_ONLY_KEYS[key]
        elif key in IGNORED_KEYS:
            continue
        else:
            known = ", ".join(sorted(ENGINE_KEYS) + sorted(OFF_ONLY_KEYS))
            raise ConfigError(f"unknown configuration key '{key}' (known keys: {known})")
        try:
            v = conv(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"configuration key '{key}': {e}") from e
        if key in OFF_ONLY_KEYS:
            if v:
                raise ConfigError(f"configuration key '{key}': this FlexKv build has no such tier or feature yet; "
                                  f"set it to 0/false")
            continue
        out[key] = v
    if "num_cpu_blocks" not in out and "cpu_cache_gb" not in out:
        out["cpu_cache_gb"] = DEFAULT_CPU_CACHE_GB
    if out.get("tp_rank", 0) >= out.get("tp_size", 1):
        raise ConfigError(f"configuration key 'tp_rank': must be < tp_size ({out.get('tp_size', 1)}), "
                          f"got {out.get('tp_rank')}")
    return out


def to_json(config: Mapping[str, Any]) -> bytes:
    """The UTF-8 JSON document handed to ``flexkv_engine_create``."""
    return json.dumps(dict(config), separators=(",", ":")).encode("utf-8")
