"""``KVConnectorFactory`` (factory.py @ a4cd9d0 with the 2026 options).

Class resolution prefers the registry over ``kv_connector_module_path`` as vLLM 0.10–~0.20 do;
set ``KVConnectorFactory.module_path_first = True`` for the 2026 order (module path first).
Like vLLM >= 0.17.2, ``FlexKVConnectorV1`` is a built-in name (the upstream wrapper, which
imports ``flexkv.integration.vllm.vllm_v1_adapter.FlexKVConnectorV1Impl``)."""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Callable, Optional

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1, KVConnectorRole, supports_hma

if TYPE_CHECKING:
    from vllm.config import KVTransferConfig, VllmConfig
    from vllm.v1.kv_cache_interface import KVCacheConfig

logger = logging.getLogger(__name__)


class KVConnectorFactory:
    _registry: dict[str, Callable[[], type[KVConnectorBase_V1]]] = {}
    module_path_first: bool = False

    @classmethod
    def register_connector(cls, name: str, module_path: str, class_name: str) -> None:
        """Register a connector with a lazy-loading module and class name."""
        if name in cls._registry:
            raise ValueError(f"Connector '{name}' is already registered.")

        def loader() -> type[KVConnectorBase_V1]:
            module = importlib.import_module(module_path)
            return getattr(module, class_name)

        cls._registry[name] = loader

    @classmethod
    def get_connector_class_by_name(cls, connector_name: str) -> type[KVConnectorBase_V1]:
        if connector_name not in cls._registry:
            raise ValueError(f"Connector '{connector_name}' is not registered.")
        return cls._registry[connector_name]()

    @classmethod
    def _get_connector_class_with_compat(cls, kv_transfer_config: "KVTransferConfig"
                                         ) -> tuple[type[KVConnectorBase_V1], bool]:
        """(class, built with the old two-argument constructor?)"""
        name = kv_transfer_config.kv_connector
        if name is None:
            raise ValueError("Connector name is not set in KVTransferConfig")
        path = kv_transfer_config.kv_connector_module_path
        if path == "":
            raise ValueError("kv_connector_module_path must not be an empty string")
        if name in cls._registry and not (cls.module_path_first and path):
            return cls._registry[name](), False
        if path is None:
            raise ValueError(f"Unsupported connector type: {name}")
        module = importlib.import_module(path)
        try:
            connector_cls = getattr(module, name)
        except AttributeError as e:
            raise AttributeError(f"Class {name} not found in {path}") from e
        compat = "kv_cache_config" not in inspect.signature(connector_cls.__init__).parameters
        if compat:
            logger.warning("Connector %s uses deprecated signature with 2 required arguments. Please update to "
                           "include kv_cache_config as the third argument.", connector_cls.__name__)
        return connector_cls, compat

    @classmethod
    def get_connector_class(cls, kv_transfer_config: "KVTransferConfig") -> type[KVConnectorBase_V1]:
        return cls._get_connector_class_with_compat(kv_transfer_config)[0]

    @classmethod
    def create_connector(cls, config: "VllmConfig", role: KVConnectorRole,
                         kv_cache_config: Optional["KVCacheConfig"] = None) -> KVConnectorBase_V1:
        kv_transfer_config = config.kv_transfer_config
        if kv_transfer_config is None:
            raise ValueError("kv_transfer_config must be set to create a connector")
        connector_cls, compat = cls._get_connector_class_with_compat(kv_transfer_config)
        if not config.scheduler_config.disable_hybrid_kv_cache_manager and not supports_hma(connector_cls):
            raise ValueError(f"Connector {connector_cls.__name__} does not support HMA but HMA is enabled. "
                             "Please set `--disable-hybrid-kv-cache-manager`.")
        logger.info("Creating v1 connector with name: %s and engine_id: %s", connector_cls.__name__,
                    kv_transfer_config.engine_id)
        if compat:
            return connector_cls(config, role)
        return connector_cls(config, role, kv_cache_config)


# Built-in (vLLM >= 0.17.2, PR #34328). The other built-in names are not stubbed.
KVConnectorFactory.register_connector(
    "FlexKVConnectorV1", "vllm.distributed.kv_transfer.kv_connector.v1.flexkv_connector", "FlexKVConnectorV1")
