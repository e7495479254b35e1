"""Configuration as FlexKV users know it, turned into the engine's one JSON document.

Sources, lowest to highest priority: built-in defaults; environment variables
(``FLEXKV_CPU_CACHE_GB``, …) — the user-level ones ignored, as in FlexKV, when
``FLEXKV_CONFIG_PATH`` names a file; the file's keys (YAML or JSON, flat or FlexKV's older
nested sections); explicit overrides (for vLLM: ``kv_connector_extra_config``).
Every value is validated here with a message naming the key; the engine checks again.
What each FlexKV key becomes is decided in :mod:`flexkv._config_compat`; docs/configuration.md
lists them all. ``ENABLE_FLEXKV=0`` turns the vLLM connector off (:func:`flexkv_enabled`).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from . import _config_compat as compat
from . import _convert as conv
from ._errors import ConfigError
from ._redact import is_secret_key, redact_url, redacted  # noqa: F401  (public here)

DEFAULT_CPU_CACHE_GB = 16.0
SSD_ALIGNMENT = 4096  # the engine's SSD slot granularity (DirectFileDevice.Alignment)

logger = logging.getLogger("flexkv.config")
_bool = conv.to_bool  # the connector modules import it from here

# Engine keys: name -> converter. These cross to the engine unchanged.
ENGINE_KEYS: Dict[str, Callable[[Any], Any]] = {
    "tokens_per_block": conv.positive_int,
    "cpu_cache_gb": conv.positive_float,
    "num_cpu_blocks": conv.positive_int,
    "block_bytes": conv.positive_int,
    "num_layers": conv.positive_int,
    "num_kv_heads": conv.positive_int,
    "head_size": conv.positive_int,
    "dtype": conv.string,
    "use_mla": conv.to_bool,
    "model_name": conv.string,
    "layout": conv.string,
    "tp_size": conv.positive_int,
    "tp_rank": conv.non_negative_int,
    "secret": conv.string,
    "transfer_threads": conv.positive_int,
    "transfer_queue_capacity": conv.positive_int,
    "use_hugepage_cpu_buffer": conv.to_bool,
    "cuda_batch_copy": conv.to_bool,
    "eviction_policy": conv.string,
    "ssd_cache_gb": conv.non_negative_float,
    "ssd_cache_dir": conv.path_list,
    "ssd_persist": conv.to_bool,
    "ssd_direct_io": conv.to_bool,
    "ssd_preallocate": conv.to_bool,
    "remote_url": conv.string,
    "redis_host": conv.string,
    "redis_port": conv.non_negative_int,
    "redis_password": conv.string,
    "remote_user": conv.string,
    "remote_prefix": conv.string,
    "remote_ttl_s": conv.non_negative_int,
    "remote_lookup_budget_ms": conv.non_negative_int,
    "remote_timeout_ms": conv.positive_int,
    "remote_max_inflight_mb": conv.positive_int,
    "remote_drop_on_reset": conv.to_bool,
    "max_memory_fraction": conv.fraction,
    # FlexKV's SSD size in blocks; becomes ssd_cache_gb in to_json, once the block size is final.
    "num_ssd_blocks": conv.non_negative_int,
}

# Options of the vLLM connector, accepted in a file too (kv_connector_extra_config wins);
# they are read by the connector, not by the engine.
CONNECTOR_KEYS: Dict[str, Callable[[Any], Any]] = {
    "save_on_abort": conv.to_bool,
    "registration_timeout_s": conv.positive_float,
    "registration_socket": conv.string,
    "worker_huge_pages": conv.to_bool,
    "idle_flush_timeout_ms": conv.milliseconds,
    "stats_interval_ms": conv.milliseconds,
    "kv_events_buffer": conv.positive_int,
}

# FlexKV's own switches that are honoured where they are read: enable_flexkv by
# flexkv_enabled(), log_level (= FLEXKV_LOG_LEVEL) here; enable_cpu must stay true.
SWITCH_KEYS: Dict[str, Callable[[Any], Any]] = {
    "enable_flexkv": conv.to_bool,
    "enable_cpu": conv.to_bool,
    "log_level": conv.string,
}

# The metrics exporter (flexkv.metrics): one per process, started by the first engine whose
# configuration enables it; never sent to the engine.
METRICS_KEYS: Dict[str, Callable[[Any], Any]] = {
    "enable_metrics": conv.to_bool,
    "metrics_port": conv.port,
    "metrics_host": conv.string,
}

_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "WARN": logging.WARNING,
           "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}


def read_config_file(path: str | os.PathLike) -> Dict[str, Any]:
    """Reads a JSON or YAML config file into a dict (keys unchecked, sections kept)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"FLEXKV_CONFIG_PATH: {p} does not exist or is not a file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yml", ".yaml"):
        try:
            import yaml  # lazily: only YAML users need PyYAML
        except ImportError as e:
            raise ConfigError(f"{p} is YAML but PyYAML is not installed; install it or use JSON") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            # PyYAML's message quotes the offending line, which may hold a password: position only.
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"cannot parse {p}: {getattr(e, 'problem', None) or 'invalid YAML'}{where}") from None
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"cannot parse {p}: {getattr(e, 'msg', 'invalid JSON')} at line "
                              f"{getattr(e, 'lineno', '?')}, column {getattr(e, 'colno', '?')}") from None
    else:
        raise ConfigError(f"{p}: config files must end in .json, .yml or .yaml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_log_level(env: Optional[Mapping[str, str]] = None) -> None:
    """Sets the level of the ``flexkv`` logger from ``FLEXKV_LOG_LEVEL`` (DEBUG, INFO, WARNING,
    ERROR, CRITICAL or OFF, as in FlexKV); unset leaves logging as the application set it."""
    env = os.environ if env is None else env
    value = env.get("FLEXKV_LOG_LEVEL", "")
    if value.strip():
        _set_level(value, "FLEXKV_LOG_LEVEL")


def _set_level(value: str, name: str) -> None:
    level = _LEVELS.get(value.strip().upper())
    if level is None:
        logger.warning("FlexKv: %s=%r is not one of %s; the log level is unchanged", name, value,
                       ", ".join(k for k in _LEVELS if k != "WARN"))
        return
    logging.getLogger("flexkv").setLevel(level)


def flexkv_enabled(env: Optional[Mapping[str, str]] = None, overrides: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether the vLLM connector should run. ``ENABLE_FLEXKV`` (FlexKV's master switch; 0/false
    turns FlexKv off) decides when set; otherwise ``enable_flexkv`` in ``overrides``
    (kv_connector_extra_config), then in the FLEXKV_CONFIG_PATH file; default on. A disabled
    connector creates no engine and answers vLLM as if nothing were ever cached."""
    env = os.environ if env is None else env
    raw = env.get("ENABLE_FLEXKV", "").strip()
    if raw:
        try:
            return conv.to_bool(raw)
        except ValueError as e:
            raise ConfigError(f"ENABLE_FLEXKV: {e}") from None
    for source, where in ((overrides, "kv_connector_extra_config"), (_file_or_none(env), "FLEXKV_CONFIG_PATH")):
        if source and "enable_flexkv" in compat.flatten(source):
            try:
                return conv.to_bool(compat.flatten(source)["enable_flexkv"])
            except ValueError as e:
                raise ConfigError(f"configuration key 'enable_flexkv' ({where}): {e}") from None
    return True


def _file_or_none(env: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    path = env.get("FLEXKV_CONFIG_PATH")
    return read_config_file(path) if path else None


def _warn_env(env: Mapping[str, str], file_given: bool) -> None:
    """One warning per misspelt FLEXKV_* variable (naming the closest known one), and one for the
    user-level variables a config file makes FlexKV (and so FlexKv) ignore."""
    for name in sorted(n for n in env if n.startswith("FLEXKV_") and n not in compat.KNOWN_ENV):
        closest = difflib.get_close_matches(name, compat.KNOWN_ENV, n=1, cutoff=0.0)
        logger.warning("FlexKv: the environment variable %s is not one FlexKv or FlexKV reads and is ignored; "
                       "did you mean %s?", name, closest[0] if closest else "FLEXKV_CONFIG_PATH")
    if file_given:
        ignored = [n for n in compat.USER_ENV if env.get(n, "") != ""]
        if ignored:
            logger.warning("FlexKv: %s ignored: FLEXKV_CONFIG_PATH names a config file, whose keys apply instead "
                           "(as in FlexKV)", ", ".join(ignored))


def load_config(overrides: Optional[Mapping[str, Any]] = None,
                env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """Builds the validated engine configuration dict.

    ``env`` defaults to ``os.environ``; ``overrides`` win over everything else.
    """
    env = os.environ if env is None else env
    apply_log_level(env)
    raw: Dict[str, Any] = {}
    names: Dict[str, str] = {}  # key -> the environment variable it came from (for messages)

    def put(source: Mapping[str, Any], name_of=None) -> None:
        for key, value in source.items():
            raw[key] = value
            names.pop(key, None)
            if name_of:
                names[key] = name_of(key)

    # FlexKV's advanced variables apply with or without a file; a file key of the same name wins.
    advanced = {compat.env_key(n): env[n] for n in compat.GLOBAL_ENV + compat.METRICS_ENV if env.get(n, "") != ""}
    if "metrics_port" in advanced and advanced.pop("py_metrics_port", None) not in (None, advanced["metrics_port"]):
        logger.warning("FlexKv: FLEXKV_METRICS_PORT=%s wins over FLEXKV_PY_METRICS_PORT=%s", env["FLEXKV_METRICS_PORT"],
                       env["FLEXKV_PY_METRICS_PORT"])
    put(advanced, lambda k: "FLEXKV_" + k.upper())
    path = env.get("FLEXKV_CONFIG_PATH")
    if path:
        put(compat.flatten(read_config_file(path)))
    else:
        by_key = {key: name for name, key in compat.USER_ENV.items()}
        put({key: env[name] for name, key in compat.USER_ENV.items() if env.get(name, "") != ""}, by_key.get)
    _warn_env(env, bool(path))
    if overrides:
        put(compat.flatten(overrides))
    return _normalize(raw, names)


def normalize(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """Validates keys and values (flat or in FlexKV's sections) and returns what the engine receives."""
    return _normalize(compat.flatten(raw), {})


def _label(key: str, names: Mapping[str, str]) -> str:
    return f"configuration key '{key}'" + (f" ({names[key]})" if key in names else "")


def _convert(key: str, conv_fn: Callable[[Any], Any], value: Any, names: Mapping[str, str]) -> Any:
    label = _label(key, names)
    try:
        return conv_fn(value)
    except (TypeError, ValueError) as e:
        if is_secret_key(key) or key == "remote_url":
            raise ConfigError(f"{label}: invalid value (not shown: it may hold a secret)") from None
        raise ConfigError(f"{label}: {e}") from None


def _known(key: str) -> bool:
    return any(key in table for table in (ENGINE_KEYS, CONNECTOR_KEYS, SWITCH_KEYS, METRICS_KEYS, compat.GATES,
                                          compat.OFF_ONLY, compat.ALIASES, compat.NO_EFFECT))


def _is_off_switch(key: str, value: Any) -> bool:
    """A FlexKV feature switch set to off: the feature is absent here too, so nothing to warn about."""
    switch = key.startswith(("enable_", "use_")) or key in ("server_client_mode", "sync_get", "maybe_skip_put",
                                                            "transfer_trace", "debug")
    try:
        return switch and not conv.to_bool(value)
    except ValueError:
        return False


def _normalize(flat: Mapping[str, Any], names: Mapping[str, str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    gates: Dict[str, bool] = {}
    aliased: Dict[str, Any] = {}
    no_effect: Dict[str, List[str]] = {}  # reason -> keys, so each key is named in one warning
    notes: List[str] = []
    for key, value in flat.items():
        if value is None and _known(key):
            continue  # YAML's "key:" and FlexKV's Optional fields: not set
        if key in ENGINE_KEYS:
            out[key] = _convert(key, ENGINE_KEYS[key], value, names)
        elif key in compat.GATES:
            gates[key] = _convert(key, compat.GATES[key], value, names)
        elif key in compat.OFF_ONLY:
            if _convert(key, conv.to_bool, value, names):
                raise ConfigError(f"{_label(key, names)}: {compat.OFF_ONLY[key]}; set it to false")
        elif key in compat.ALIASES:
            target, fn = compat.ALIASES[key]
            aliased[target] = (key, _convert(key, fn, value, names))
        elif key in METRICS_KEYS:
            out[key] = _convert(key, METRICS_KEYS[key], value, names)  # for the exporter; see engine_document
        elif key in CONNECTOR_KEYS:
            _convert(key, CONNECTOR_KEYS[key], value, names)  # validated here, used by the connector
        elif key in SWITCH_KEYS:
            v = _convert(key, SWITCH_KEYS[key], value, names)
            if key == "enable_cpu" and not v:
                raise ConfigError("configuration key 'enable_cpu': the CPU tier cannot be turned off (nor in FlexKV)")
            if key == "log_level":
                _set_level(v, "log_level")
        elif key in compat.NO_EFFECT:
            if not _is_off_switch(key, value):  # "enable_trace: false" is what FlexKv does anyway
                no_effect.setdefault(compat.NO_EFFECT[key], []).append(names.get(key, key))
        else:
            close = difflib.get_close_matches(key, list(ENGINE_KEYS) + list(compat.NO_EFFECT) + list(compat.OFF_ONLY)
                                              + list(compat.GATES) + list(compat.ALIASES) + list(CONNECTOR_KEYS)
                                              + list(METRICS_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown configuration key '{key}'{hint}; docs/configuration.md lists every key")
    for target, (key, v) in aliased.items():
        if v is None:
            continue  # kv_cache_dtype: auto
        if target in out and out[target] != v and key != "kv_cache_dtype":
            raise ConfigError(f"configuration key '{key}' says {target} = {v} but '{target}' is {out[target]}")
        out[target] = v  # kv_cache_dtype is FlexKV's override of the model dtype: it wins
    compat.apply_gates(out, gates, flat, notes.append)
    for why, keys in no_effect.items():
        logger.warning("FlexKv: %s %s no effect here: %s", ", ".join(keys), "has" if len(keys) == 1 else "have", why)
    for note in notes:
        logger.warning("FlexKv: %s", note)
    if "num_cpu_blocks" not in out and "cpu_cache_gb" not in out:
        out["cpu_cache_gb"] = DEFAULT_CPU_CACHE_GB
    if out.get("tp_rank", 0) >= out.get("tp_size", 1):
        raise ConfigError(f"configuration key 'tp_rank': must be < tp_size ({out.get('tp_size', 1)}), "
                          f"got {out.get('tp_rank')}")
    return out


def connector_options(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """The connector options (save_on_abort, registration_*, worker_huge_pages) in ``raw``
    (flat or sectioned), validated."""
    flat = compat.flatten(raw)
    return {k: _convert(k, fn, flat[k], {}) for k, fn in CONNECTOR_KEYS.items() if k in flat}


def block_bytes_of(config: Mapping[str, Any]) -> Optional[int]:
    """Bytes of one block over all layers, as the engine will compute them (None: not known yet)."""
    if config.get("block_bytes"):
        return int(config["block_bytes"])
    try:
        size = conv.dtype_bytes(config.get("dtype", "float16"))
        if size is None:
            return None
        return (config["num_layers"] * config["num_kv_heads"] * config["head_size"] * size
                * (1 if config.get("use_mla") else 2) * config.get("tokens_per_block", 16))
    except KeyError:
        return None


def engine_document(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The keys the engine receives: ``num_ssd_blocks`` (FlexKV's) becomes ``ssd_cache_gb``, now
    that the block size is final (it wins over ssd_cache_gb, as num_cpu_blocks does for the CPU);
    the metrics exporter's keys stay in Python."""
    doc = {k: v for k, v in config.items() if k not in METRICS_KEYS}  # the exporter's, not the engine's
    blocks = doc.pop("num_ssd_blocks", None)
    if blocks:
        bb = block_bytes_of(doc)
        if bb is None:
            raise ConfigError("configuration key 'num_ssd_blocks': the block size is not known; set block_bytes "
                              "(or num_layers, num_kv_heads and head_size), or size the SSD tier with ssd_cache_gb")
        slot = -(-bb // SSD_ALIGNMENT) * SSD_ALIGNMENT  # SSD slots are rounded up to the alignment
        doc["ssd_cache_gb"] = blocks * slot / (1 << 30)  # exact: a power-of-two division
    return doc


def to_json(config: Mapping[str, Any]) -> bytes:
    """The UTF-8 JSON document handed to ``flexkv_engine_create``."""
    return json.dumps(engine_document(config), separators=(",", ":")).encode("utf-8")
