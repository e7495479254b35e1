"""What FlexKV's configuration means here: its keys, sections and environment variables.

A FlexKV user's file or environment must start vLLM with FlexKv. Every key FlexKV documents
therefore has one of three fates:

* it maps to an engine key (``cpu_cache_gb``, ``ssd_cache_dir`` as a list, ``kv_cache_dtype``,
  ``num_ssd_blocks``, the ``enable_ssd`` / ``enable_remote`` gates, ...);
* it is accepted with one warning naming it and saying why it has no effect here (tuning of
  FlexKV's own kernels, processes and eviction heuristics);
* it is an error, when turning it on asks for something FlexKv cannot do (GDS, NIXL, p2p
  sharing, Mooncake) and silently ignoring it would give a different system than asked for.

Sources (FlexKV's docs/flexkv_config_reference, flexkv/common/config.py and the older nested
``cache_config`` format of its 0.x vLLM and TensorRT-LLM examples) are read for facts only.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

from . import _convert
from ._errors import ConfigError

# Older FlexKV files put the cache keys in a "cache_config" section (vLLM/TRT-LLM examples of
# 2025) and benchmark files use "ModelConfig"/"CacheConfig"; their keys are read as if flat.
SECTIONS = ("cache_config", "CacheConfig", "model_config", "ModelConfig")

# FlexKV features FlexKv does not have: false is what we do; true is an error.
OFF_ONLY: Dict[str, str] = {
    "enable_gds": "GPU Direct Storage is not supported (SSD blocks are read through the CPU tier)",
    "use_gds": "GPU Direct Storage is not supported (SSD blocks are read through the CPU tier)",
    "enable_nixl": "NIXL transfers are not supported",
    "enable_p2p_cpu": "peer-to-peer sharing of CPU blocks is not supported; share through the Redis tier "
                      "(enable_remote with remote_url)",
    "enable_p2p_ssd": "peer-to-peer sharing of SSD blocks is not supported; share through the Redis tier "
                      "(enable_remote with remote_url)",
    "enable_3rd_remote": "FlexKV's third-party remote storage (PCFS) is not supported; FlexKv's remote tier is Redis",
    "enable_kv_sharing": "FlexKV's distributed KV sharing is not supported; share through the Redis tier",
    "use_mooncake_store_backend": "the Mooncake Store backend is not supported; FlexKv's remote tier is Redis",
}

# Keys FlexKV reads that change nothing here, grouped by the reason given in the warning.
_NO_EFFECT_GROUPS = {
    "FlexKv's block index is always the native one": (
        "index_accel",),
    "FlexKv evicts least-recently-used blocks only when a tier is full": (
        "evict_ratio", "evict_start_threshold", "hit_reward_seconds", "slru_protected_threshold",
        "eviction_log_interval_s"),
    "FlexKv's copies are its own (cuda_batch_copy, transfer_threads), not FlexKV's kernels": (
        "use_ce_transfer_h2d", "use_ce_transfer_d2h", "transfer_num_cta_h2d", "transfer_num_cta_d2h",
        "transfer_sms_h2d", "transfer_sms_d2h", "ce_segment_threshold", "ce_path_opt", "enable_ce_memcpy2d",
        "ce_gather_threads", "ce_gather_nt"),
    "FlexKv's SSD tier keeps one file per directory and does its own I/O (ssd_direct_io)": (
        "max_file_size_gb", "max_blocks_per_file", "iouring_entries", "iouring_flags", "ssd_cache_iouring_entries",
        "ssd_cache_iouring_flags", "ssd_io_opt"),
    "every FlexKv tier stores blocks as the attention backend lays them out": (
        "cpu_layout", "ssd_layout", "remote_layout", "gds_layout", "cpu_layout_type", "ssd_layout_type",
        "remote_layout_type", "gds_layout_type", "gpu_kv_layout_type", "cpu_kv_layout_type", "ssd_kv_layout_type",
        "remote_kv_layout_type"),
    "FlexKv runs inside each vLLM scheduler process (no shared server, no MPS): every instance has its own "
    "CPU tier of cpu_cache_gb": (
        "server_client_mode", "server_launch_mode", "server_recv_port", "instance_num", "instance_id", "enable_mps",
        "master_host", "master_ports", "trt_subprocess_host", "trt_subprocess_ports", "worker_shutdown_timeout_s",
        "transfer_manager_shutdown_timeout_s", "shutdown_wait_s", "vmm_fd_sock_dir"),
    "FlexKv serves every series, FlexKV's C++ ones included, on one endpoint (metrics_port)": (
        "cpp_metrics_port",),
    "vLLM logs FlexKv's figures every log interval, and Prometheus and Grafana are yours to run "
    "(deploy/grafana/flexkv.json)": (
        "num_log_interval_requests", "enable_monitoring"),
    "FlexKv has no request or transfer tracer": (
        "enable_trace", "trace_file_path", "trace_max_file_size_mb", "trace_max_files", "trace_flush_interval_ms",
        "transfer_trace", "enable_transfer_trace"),
    "FlexKv's remote tier is Redis (remote_url); FlexKV's peer-to-peer and distributed-tree settings do not apply": (
        "local_zmq_ip", "local_zmq_port", "local_ip", "node_ttl_seconds", "distributed_node_id", "num_tmp_cpu_blocks",
        "num_local_blocks", "use_hugepage_tmp_buffer", "lt_pool_initial_capacity", "refresh_batch_size",
        "rebuild_interval_ms", "idle_sleep_ms", "lease_ttl_ms", "safety_ttl_ms", "renew_lease_ms",
        "reset_barrier_timeout_ms", "reset_barrier_poll_ms", "mooncake_config_path", "mooncake_store_config_path",
        "mooncake_store_pp_rank", "mooncake_store_pp_size", "mooncake_store_node_layer_start",
        "mooncake_store_node_layer_end", "mooncake_store_total_layers", "mooncake_engine_ip", "mooncake_engine_port",
        "mooncake_metadata_backend", "mooncake_metadata_server", "mooncake_metadata_server_auth", "mooncake_protocol",
        "mooncake_device_name", "nixl_extra_config", "nixl_backend_plugin"),
    "FlexKV's remote file tier (PCFS) does not exist here; FlexKv's remote tier is Redis and Redis decides its size": (
        "remote_cache_size_mode", "remote_file_size", "remote_file_num", "remote_file_prefix", "remote_cache_path",
        "remote_config_custom", "num_remote_blocks"),
    "FlexKv allocates and pins the CPU tier itself (use_hugepage_cpu_buffer asks for transparent huge pages)": (
        "hugepage_size_bytes", "hugetlbfs_dir", "cudahost_chunk_size_gb", "cudahost_chunk_safety_margin_bytes",
        "cudahost_register_portable", "use_pinned_memory"),
    "DeepSeek-V4 sliding-window (SWA) state is not cached; full-attention KV is": (
        "swa", "swa_multi_group", "swa_multi_layer", "enable_swa_transfer"),
    "loads finish before the request runs; there are no layerwise transfers": (
        "enable_layerwise_transfer", "layerwise_notify_mode", "layerwise_wait_timeout_s", "layerwise_eventfd_socket",
        "layerwise_eventfd_connect_max_retries"),
    "each tensor-parallel rank's shard is copied by the engine itself": (
        "kv_shared_across_ranks_mode", "mla_d2h_mode"),
    "compression is not supported": (
        "enable_nvcomp", "nvcomp_batch_size", "nvcomp_ssd_packed_write_threads", "nvcomp_ssd_packed_read_threads"),
    "it is SGLang's": (
        "enable_collective_sync",),
    "loads are always asynchronous and saves follow vLLM's finish reasons (save_on_abort)": (
        "sync_get", "maybe_skip_put"),
    "vLLM tells FlexKv its parallel layout and model": (
        "dp_size", "pp_size", "cp_size", "nnodes", "enable_dp_attention", "attn_cp_size", "max_req_tokens",
        "layer_groups", "use_trtllm_subprocess", "trtllm_subprocess_host", "trtllm_subprocess_ports"),
    "it is a build option of FlexKV": (
        "enable_p2p", "enable_cfs", "debug"),
    "FlexKv's log lines carry the logger name 'flexkv'": (
        "logging_prefix",),
}
NO_EFFECT: Dict[str, str] = {k: why for why, keys in _NO_EFFECT_GROUPS.items() for k in keys}

# FlexKV's user-level environment variables (and ours): ignored, as in FlexKV, when
# FLEXKV_CONFIG_PATH names a file. Env name -> key.
USER_ENV = {
    "FLEXKV_CPU_CACHE_GB": "cpu_cache_gb",
    "FLEXKV_NUM_CPU_BLOCKS": "num_cpu_blocks",
    "FLEXKV_SSD_CACHE_GB": "ssd_cache_gb",
    "FLEXKV_SSD_CACHE_DIR": "ssd_cache_dir",
    "FLEXKV_SSD_PERSIST": "ssd_persist",
    "FLEXKV_TOKENS_PER_BLOCK": "tokens_per_block",
    "FLEXKV_USE_HUGEPAGE_CPU_BUFFER": "use_hugepage_cpu_buffer",
    "FLEXKV_CUDA_BATCH_COPY": "cuda_batch_copy",
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
    "FLEXKV_ENABLE_GDS": "enable_gds",
    "FLEXKV_ENABLE_NIXL": "enable_nixl",
    "FLEXKV_USE_HUGEPAGE_TMP_BUFFER": "use_hugepage_tmp_buffer",
    "FLEXKV_HUGEPAGE_SIZE_BYTES": "hugepage_size_bytes",
    "FLEXKV_USE_MOONCAKE_STORE_BACKEND": "use_mooncake_store_backend",
    "FLEXKV_MOONCAKE_STORE_CONFIG_PATH": "mooncake_store_config_path",
    "FLEXKV_KV_CACHE_DTYPE": "kv_cache_dtype",
    "FLEXKV_SWA_MULTI_GROUP": "swa_multi_group",
    "FLEXKV_SWA_MULTI_LAYER": "swa_multi_layer",
}

# FlexKV's advanced ("global") variables: read with or without a file, a file key of the same
# name (FLEXKV_ removed, lower case) wins. All but eviction_policy, enable_metrics and
# py_metrics_port are NO_EFFECT keys.
GLOBAL_ENV = tuple("FLEXKV_" + k.upper() for k in (
    "eviction_policy", "index_accel", "evict_ratio", "evict_start_threshold", "hit_reward_seconds",
    "slru_protected_threshold", "eviction_log_interval_s", "use_ce_transfer_h2d", "use_ce_transfer_d2h",
    "transfer_num_cta_h2d", "transfer_num_cta_d2h", "ce_segment_threshold", "ce_path_opt", "enable_ce_memcpy2d",
    "ce_gather_threads", "ce_gather_nt", "max_file_size_gb", "iouring_entries", "iouring_flags", "ssd_io_opt",
    "cpu_layout", "ssd_layout", "remote_layout", "gds_layout", "server_client_mode", "server_launch_mode",
    "server_recv_port", "instance_num", "instance_id", "enable_mps", "master_host", "master_ports",
    "trt_subprocess_host", "trt_subprocess_ports", "worker_shutdown_timeout_s",
    "transfer_manager_shutdown_timeout_s", "shutdown_wait_s", "vmm_fd_sock_dir", "enable_metrics",
    "cpp_metrics_port", "py_metrics_port", "num_log_interval_requests", "enable_monitoring", "enable_trace",
    "trace_file_path", "trace_max_file_size_mb", "trace_max_files", "trace_flush_interval_ms", "transfer_trace",
    "lt_pool_initial_capacity", "refresh_batch_size", "rebuild_interval_ms", "idle_sleep_ms", "lease_ttl_ms",
    "safety_ttl_ms", "renew_lease_ms", "reset_barrier_timeout_ms", "reset_barrier_poll_ms", "nixl_backend_plugin",
    "cudahost_chunk_size_gb", "cudahost_chunk_safety_margin_bytes", "cudahost_register_portable", "hugetlbfs_dir",
    "enable_swa_transfer", "enable_layerwise_transfer", "layerwise_notify_mode", "layerwise_wait_timeout_s",
    "layerwise_eventfd_socket", "layerwise_eventfd_connect_max_retries", "kv_shared_across_ranks_mode",
    "mla_d2h_mode", "enable_nvcomp", "nvcomp_batch_size", "nvcomp_ssd_packed_write_threads",
    "nvcomp_ssd_packed_read_threads", "enable_collective_sync", "sync_get", "maybe_skip_put", "enable_p2p",
    "enable_cfs", "debug", "logging_prefix"))

# Variables read elsewhere, not configuration keys.
CONTROL_ENV = ("FLEXKV_CONFIG_PATH", "FLEXKV_LOG_LEVEL", "FLEXKV_LIBRARY_PATH", "FLEXKV_REGISTRATION_TIMEOUT_S",
               "FLEXKV_USE_VLLM_WRAPPER")  # the last is read by the vLLM plugin

# The metrics exporter's own variables, read as the global ones are (a file key wins).
METRICS_ENV = ("FLEXKV_METRICS_PORT", "FLEXKV_METRICS_HOST")

KNOWN_ENV = tuple(USER_ENV) + GLOBAL_ENV + METRICS_ENV + CONTROL_ENV


def env_key(name: str) -> str:
    """The file key of one of FlexKV's advanced variables (as FlexKV documents it)."""
    return name[len("FLEXKV_"):].lower()


def flatten(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """Lifts the keys of FlexKV's nested sections to the top level; a key given at the top and in
    a section (or in two sections) with different values is an error rather than a guess."""
    out: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            continue
        out[key], origin[key] = value, "the top level"
    for section in SECTIONS:
        if section not in raw:
            continue
        body = raw[section]
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"configuration section '{section}' must be a mapping, got {type(body).__name__}")
        for key, value in body.items():
            if key in out and out[key] != value:
                raise ConfigError(f"configuration key '{key}' is given at {origin[key]} and in '{section}' with "
                                  "different values; keep one")
            out[key], origin[key] = value, f"'{section}'"
    return out


def kv_dim_to_use_mla(v: Any) -> bool:
    """FlexKV's ModelConfig.kv_dim: 2 = K and V (MHA/GQA), 1 = one latent vector (MLA)."""
    d = _convert.positive_int(v)
    if d not in (1, 2):
        raise ValueError(f"must be 1 (MLA) or 2 (K and V), got {v!r}")
    return d == 1


def kv_cache_dtype(v: Any):
    """FlexKV's KV dtype override -> the engine's dtype name (None: keep vLLM's)."""
    s = _convert.string(v).strip().lower()
    if s in ("", "auto"):
        return None
    if s == "float8":
        return "fp8"
    if s == "nvfp4":
        raise ValueError("NVFP4 KV caches are not supported by FlexKv")
    if _convert.dtype_bytes(s) is None:
        raise ValueError(f"unknown KV dtype {v!r} (use fp8, e4m3, fp16, float16, bf16, bfloat16, fp32 or float32)")
    return s


# FlexKV spellings of engine keys: FlexKV key -> (engine key, converter). They win over the
# engine key: kv_cache_dtype is FlexKV's explicit override of the model's dtype.
ALIASES: Dict[str, tuple] = {
    "kv_cache_dtype": ("dtype", kv_cache_dtype),
    "kv_dim": ("use_mla", kv_dim_to_use_mla),
    "py_metrics_port": ("metrics_port", _convert.port),  # FlexKV's Python endpoint is our only one
}

GATES: Dict[str, Callable[[Any], Any]] = {"enable_ssd": _convert.to_bool, "enable_remote": _convert.to_bool}

_REMOTE_ADDRESS = ("remote_url", "redis_host", "redis_port")
_REMOTE_CREDENTIALS = ("redis_password", "remote_user")
_PCFS_KEYS = ("remote_cache_path", "remote_file_prefix", "remote_file_num", "remote_file_size", "remote_config_custom")


def apply_gates(out: Dict[str, Any], gates: Mapping[str, bool], flat: Mapping[str, Any],
                warn: Callable[[str], None]) -> None:
    """Honours FlexKV's tier switches on the engine keys in ``out`` (in place).

    enable_ssd: false -> no SSD tier whatever its size says; true -> it must have a size.
    enable_remote: false -> no remote tier; true -> it needs an address. Without the gate,
    remote_url (ours) switches the tier on but FlexKV's redis_host/redis_port do not: in FlexKV
    they only address the metadata server of its p2p sharing, and writing KV blocks into that
    Redis would surprise its owner.
    """
    ssd = gates.get("enable_ssd")
    ssd_sized = out.get("ssd_cache_gb", 0) > 0 or out.get("num_ssd_blocks", 0) > 0
    if ssd is False:
        if ssd_sized:
            warn("enable_ssd is false, so there is no SSD tier: ssd_cache_gb / num_ssd_blocks are ignored")
        for k in ("ssd_cache_gb", "num_ssd_blocks"):
            out.pop(k, None)
    elif ssd is True and not ssd_sized:
        raise ConfigError("configuration key 'enable_ssd' is true but the SSD tier has no size: "
                          "set ssd_cache_gb (GiB) or num_ssd_blocks")

    remote = gates.get("enable_remote")
    given = [k for k in _REMOTE_ADDRESS if out.get(k) not in (None, "", 0)]
    if remote is False:
        if given:
            warn(f"enable_remote is false, so there is no remote tier: {', '.join(given)} ignored")
        for k in _REMOTE_ADDRESS + _REMOTE_CREDENTIALS:
            out.pop(k, None)
    elif remote is True:
        if not given:
            pcfs = [k for k in _PCFS_KEYS if k in flat]
            hint = (f" ({', '.join(pcfs)} configure FlexKV's PCFS tier, which FlexKv does not have)" if pcfs else "")
            raise ConfigError("configuration key 'enable_remote' is true but no remote address is set: set remote_url "
                              f"(redis://host:port) or redis_host and redis_port{hint}")
        if not out.get("remote_url"):
            out.setdefault("redis_port", 6379)  # FlexKV's default port; the engine's host default is 127.0.0.1
    elif not out.get("remote_url") and given:
        warn(f"{', '.join(given)} set without enable_remote: true, so there is no remote tier (FlexKV uses them only "
             "for its p2p metadata); set enable_remote: true or remote_url to use Redis as a tier")
        for k in _REMOTE_ADDRESS:
            out.pop(k, None)
    if not (out.get("remote_url") or out.get("redis_port")):
        for k in _REMOTE_CREDENTIALS:  # no tier to log in to: keep the password out of the engine's config
            out.pop(k, None)
