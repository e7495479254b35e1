"""``vllm.general_plugins`` entry point: makes ``"kv_connector": "FlexKVConnectorV1"`` resolve to
this package's connector class, :class:`flexkv.integration.vllm.connector.FlexKVConnectorV1`.

vLLM >= 0.17.2 has a built-in ``FlexKVConnectorV1``: a wrapper that imports our
``FlexKVConnectorV1Impl`` but forwards only 15 methods. Without ``reset_cache`` vLLM's
``reset_prefix_cache(reset_connector=True)`` reports success while FlexKv keeps serving KV of
the old weights; without ``build_kv_connector_stats`` / ``build_prom_metrics`` vLLM logs and
exports nothing of ours. So the plugin points vLLM's registry entry for the name at our class
(vLLM loads general plugins in the front end, the engine core and every worker before it
resolves the connector, so all processes agree). ``FLEXKV_USE_VLLM_WRAPPER=1`` keeps vLLM's
wrapper. On vLLM without the built-in name the plugin simply registers it.

vLLM runs plugins in every process it starts, possibly more than once and after fork, so this
is idempotent and never raises.
"""

from __future__ import annotations

import importlib
import os

from ...config import _bool
from . import _log

NAME = "FlexKVConnectorV1"
MODULE = "flexkv.integration.vllm.connector"
OPT_OUT_ENV = "FLEXKV_USE_VLLM_WRAPPER"


def _load_ours():
    """vLLM's registry holds a loader per name, called when the connector class is needed."""
    return getattr(importlib.import_module(MODULE), NAME)


def _wants_vllm_wrapper() -> bool:
    raw = os.environ.get(OPT_OUT_ENV, "")
    try:
        return _bool(raw)
    except ValueError:
        _log.once("plugin-env", "%s=%r is not a boolean; using FlexKv's own connector class", OPT_OUT_ENV, raw)
        return False


def register() -> None:
    """Resolves FlexKVConnectorV1 to this package's class (see the module docstring)."""
    try:
        from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory
    except Exception as e:  # no vLLM, or a layout we do not know: nothing to do
        _log.once("plugin-import", "not registering %s: %s", NAME, e)
        return
    try:
        registry = KVConnectorFactory._registry
        if NAME in registry and _wants_vllm_wrapper():
            return
        registry[NAME] = _load_ours  # the same loader each time; replaces vLLM's wrapper if there
    except Exception as e:
        _log.once("plugin-register", "registering %s failed: %s", NAME, e)
