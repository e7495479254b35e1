"""Whether the configuration parses (FlexKv's keys and FlexKV's, files and FLEXKV_* variables,
as the connector reads them) and whether the engine accepts it, with what it would reserve."""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ... import _config_compat as compat
from ..._errors import FlexKVError
from ...config import CONNECTOR_KEYS, ENGINE_KEYS, SWITCH_KEYS, block_bytes_of, load_config, read_config_file
from . import FAIL, OK, WARN, Result

# Keys FlexKV spells its own way (or only FlexKV has) that this configuration understands.
_FLEXKV_ONLY = set(compat.ALIASES) | set(compat.GATES) | set(compat.NO_EFFECT) | set(compat.OFF_ONLY) | \
    set(SWITCH_KEYS) | {"num_ssd_blocks", "redis_host", "redis_port", "redis_password"}
STAND_IN_BLOCK_BYTES = 1 << 16  # sizes a configuration without model geometry (vLLM supplies it)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check(path: Optional[str], env: Optional[Mapping[str, str]] = None) -> Tuple[Optional[Dict[str, Any]], List[Result]]:
    """The normalized configuration (None when it does not parse) and the result lines."""
    env = dict(os.environ if env is None else env)
    if path:
        env["FLEXKV_CONFIG_PATH"] = path
    source = env.get("FLEXKV_CONFIG_PATH")
    logger = logging.getLogger("flexkv")
    collect, propagate = _Collect(), logger.propagate
    logger.addHandler(collect)
    logger.propagate = False  # the warnings become result lines, not stderr noise
    try:
        cfg = load_config(env=env)
    except (FlexKVError, OSError) as e:
        where = source or "FLEXKV_* variables"
        return None, [Result("config", FAIL, f"{where}: {e}", "fix the key named; docs/configuration.md lists every key")]
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    out = [Result("config", OK, _describe(source, env))]
    out += [Result("config", WARN, m.removeprefix("FlexKv: "), "remove the key or see docs/configuration.md")
            for m in collect.messages]
    return cfg, out


def _describe(source: Optional[str], env: Mapping[str, str]) -> str:
    if not source:
        used = sorted(n for n in env if n in compat.USER_ENV or n in compat.GLOBAL_ENV)
        return ("no configuration file (FLEXKV_CONFIG_PATH unset): defaults"
                + (f" and {', '.join(used)}" if used else ""))
    raw = read_config_file(source)
    flat = compat.flatten(raw)
    theirs = sorted(k for k in flat if k in _FLEXKV_ONLY)
    sections = sorted(k for k in raw if k in compat.SECTIONS)
    ours = [k for k in flat if k in ENGINE_KEYS or k in CONNECTOR_KEYS]
    text = f"{source} parses: {len(flat)} keys"
    if sections:
        text += f" (FlexKV sections: {', '.join(sections)})"
    if theirs:
        text += f"; FlexKV keys understood: {', '.join(theirs)}"
    elif ours:
        text += "; all FlexKv keys"
    return text


def geometry_known(cfg: Mapping[str, Any]) -> bool:
    """Whether the configuration gives the block size (otherwise vLLM gives it at start-up)."""
    return block_bytes_of(cfg) is not None


def with_stand_in(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """``cfg`` with a stand-in block size when it has none, so sizes in GiB can still be checked."""
    return dict(cfg) if geometry_known(cfg) else {**cfg, "block_bytes": STAND_IN_BLOCK_BYTES}


def engine_view(cfg: Mapping[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Result]]:
    """What the engine makes of the configuration (flexkv_config_summary), or why it refuses it."""
    from ...library_info import config_summary

    known = geometry_known(cfg)
    if not known and ("num_cpu_blocks" in cfg or cfg.get("num_ssd_blocks")):
        return None, [Result("config", WARN, "sizes are given in blocks but the block size is not known "
                             "(vLLM gives it at start-up): memory and disk needs cannot be checked",
                             "give block_bytes (or num_layers, num_kv_heads, head_size, dtype) to check them")]
    try:
        summary = config_summary(with_stand_in(cfg))
    except FlexKVError as e:
        return None, [Result("config", FAIL, f"the engine refuses it: {e}", "fix the key named")]
    summary["geometry_known"] = known
    if known:
        what = f"blocks of {summary['block_bytes']:,} bytes ({summary['tokens_per_block']} tokens)"
    else:
        what = "block size from vLLM at start-up"
    ssd = f", SSD {summary['ssd_slots']:,} slots" if summary["ssd_slots"] else ""
    return summary, [Result("engine", OK, f"the engine accepts it: {what}, CPU {_gib(summary['cpu_pool_bytes'])}{ssd}"
                            + (f", remote {summary['remote_url']}" if summary["remote_url"] else ""))]


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"
