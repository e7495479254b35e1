"""The engine configuration for a vLLM instance: FlexKV-style file/env config, then
``kv_connector_extra_config``, then the facts vLLM decides (block size, model, KV dtype, TP).
A fact the user also set must agree with vLLM, or it is a clear error."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from ..._convert import dtype_bytes
from ..._errors import ConfigError
from ...config import CONNECTOR_KEYS, connector_options as _options_in, load_config, read_config_file
from . import _deployment


@dataclass
class AdapterOptions:
    """Connector behaviour switches (from the config file or ``kv_connector_extra_config``)."""

    save_on_abort: bool = False
    # When no request is left running, how long a step waits for saves still in flight so that
    # vLLM, which stops stepping when idle, gets them reported (and frees their blocks).
    idle_flush_timeout_ms: float = 200.0
    # How often at most the scheduler side hands vLLM its figures (vLLM asks every step).
    stats_interval_ms: float = 100.0
    # KV events (with vLLM's kv_events_config) the engine keeps until vLLM takes them.
    kv_events_buffer: int = 16384


def connector_options(vllm_config, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The connector options of the FLEXKV_CONFIG_PATH file, overridden by kv_connector_extra_config."""
    env = os.environ if env is None else env
    path = env.get("FLEXKV_CONFIG_PATH")
    opts = _options_in(read_config_file(path)) if path else {}
    extra = getattr(getattr(vllm_config, "kv_transfer_config", None), "kv_connector_extra_config", None) or {}
    try:
        opts.update(_options_in(extra))
    except ConfigError as e:
        raise ConfigError(f"kv_connector_extra_config: {e}") from None
    return opts


def publish_connector_options(vllm_config, env: Optional[Mapping[str, str]] = None) -> None:
    """Puts the file's connector options into kv_connector_extra_config (which wins), where the
    registration and worker code read them."""
    ktc = getattr(vllm_config, "kv_transfer_config", None)
    if ktc is None:
        return
    opts = connector_options(vllm_config, env)
    extra = getattr(ktc, "kv_connector_extra_config", None)
    if extra is None:
        ktc.kv_connector_extra_config = dict(opts)
    else:
        for k, v in opts.items():
            extra.setdefault(k, v)


def _dtype_name(vllm_config) -> str:
    cache_dtype = str(getattr(vllm_config.cache_config, "cache_dtype", "auto") or "auto")
    if cache_dtype != "auto":
        return cache_dtype
    return str(getattr(vllm_config.model_config, "dtype", "float16")).replace("torch.", "")


def _model_fields(vllm_config) -> Dict[str, Any]:
    """Per-rank layer/head geometry from the model config (block_bytes follows from it)."""
    mc, pc = vllm_config.model_config, vllm_config.parallel_config
    try:
        return {
            "num_layers": int(mc.get_num_layers(pc)),
            "num_kv_heads": 1 if getattr(mc, "use_mla", False) else int(mc.get_num_kv_heads(pc)),
            "head_size": int(mc.get_head_size()),
            "use_mla": bool(getattr(mc, "use_mla", False)),
        }
    except (AttributeError, TypeError) as e:
        raise ConfigError(f"the vLLM model config does not give the KV geometry FlexKv needs ({e}); "
                          "set block_bytes in kv_connector_extra_config") from e


def _block_bytes_from_kv_cache_config(kv_cache_config) -> Optional[int]:
    """Bytes of one block over all layers from vLLM's KVCacheConfig (0.12+), if given."""
    groups = getattr(kv_cache_config, "kv_cache_groups", None)
    if not groups:
        return None
    total = 0
    for g in groups:
        spec = getattr(g, "kv_cache_spec", None)
        page = getattr(spec, "page_size_bytes", None)
        if page is None:
            return None
        total += int(page) * len(g.layer_names)
    return total or None


def build(vllm_config, kv_cache_config=None, env: Optional[Mapping[str, str]] = None):
    """Returns (engine config dict, AdapterOptions)."""
    ktc = getattr(vllm_config, "kv_transfer_config", None)
    if ktc is None:
        raise ConfigError("vLLM's kv_transfer_config is missing: pass --kv-transfer-config")
    extra = {k: v for k, v in (getattr(ktc, "kv_connector_extra_config", None) or {}).items()
             if k not in CONNECTOR_KEYS}  # read by the connector, not engine keys
    given = connector_options(vllm_config, env)
    opts = AdapterOptions(**{k: given[k] for k in AdapterOptions.__dataclass_fields__ if k in given})
    cfg = load_config(extra, env=env)
    rank = _deployment.dp_rank(vllm_config)
    if rank is not None and cfg.get("ssd_cache_dir"):
        # Each data-parallel rank has its own engine; one SSD directory holds one engine's cache.
        cfg["ssd_cache_dir"] = ";".join(_deployment.per_dp_rank_path(d, rank, directory=True)
                                        for d in cfg["ssd_cache_dir"].split(";"))

    cache_config, model_config = vllm_config.cache_config, vllm_config.model_config
    pc = vllm_config.parallel_config
    facts: Dict[str, Any] = {
        "tokens_per_block": int(cache_config.block_size),
        "tp_size": int(getattr(pc, "tensor_parallel_size", 1)),
        "tp_rank": 0,
    }
    for key, value in facts.items():
        if key in cfg and cfg[key] != value:
            raise ConfigError(f"FlexKv's {key} is {cfg[key]} but vLLM's is {value}; remove {key} from the FlexKv "
                              "config (FlexKv takes it from vLLM)")
    cfg.update(facts)
    cfg.setdefault("model_name", str(getattr(model_config, "model", "")))
    cfg.setdefault("dtype", _dtype_name(vllm_config))
    world = int(getattr(pc, "world_size", 1) or 1)
    if "block_bytes" not in cfg:
        # vLLM's sizes are per worker; one engine block holds every rank's shard.
        bb = _block_bytes_from_kv_cache_config(kv_cache_config)
        if bb is None and world > 1:
            f = _model_fields(vllm_config)
            bb = f["num_layers"] * f["num_kv_heads"] * f["head_size"] * (1 if f["use_mla"] else 2) \
                * cfg["tokens_per_block"] * (dtype_bytes(cfg.get("dtype", "float16")) or 2)
        if bb is not None:
            cfg["block_bytes"] = bb * world
        else:
            for k, v in _model_fields(vllm_config).items():
                cfg.setdefault(k, v)
    try:
        import vllm  # noqa: F401  (only for the version in the fingerprint)
        version = getattr(vllm, "__version__", "unknown")
    except ImportError:
        version = "unknown"
    # Blocks travel as the attention backend's bytes; another vLLM may lay them out differently.
    cfg.setdefault("layout", f"vllm-{version}")
    return cfg, opts
