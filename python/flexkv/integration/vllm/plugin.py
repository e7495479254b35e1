"""``vllm.general_plugins`` entry point: makes ``"kv_connector": "FlexKVConnectorV1"`` resolve on
vLLM versions that do not ship it. vLLM runs plugins in every process it starts, possibly more
than once and after fork, so this is idempotent and never raises."""

from __future__ import annotations

from . import _log

NAME = "FlexKVConnectorV1"


def register() -> None:
    """Registers FlexKVConnectorV1 with vLLM's KVConnectorFactory unless the name is taken."""
    try:
        from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory
    except Exception as e:  # no vLLM, or a layout we do not know: nothing to do
        _log.once("plugin-import", "not registering %s: %s", NAME, e)
        return
    try:
        if NAME in getattr(KVConnectorFactory, "_registry", {}):
            return  # vLLM >= 0.17.2 ships it; its wrapper loads our FlexKVConnectorV1Impl
        KVConnectorFactory.register_connector(NAME, "flexkv.integration.vllm.connector", NAME)
    except ValueError:
        pass  # registered concurrently
    except Exception as e:
        _log.once("plugin-register", "registering %s failed: %s", NAME, e)
