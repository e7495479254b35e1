"""vLLM integration: ``FlexKVConnectorV1Impl`` (the class vLLM >= 0.17.2 imports from here),
``FlexKVConnectorV1`` (a ``KVConnectorBase_V1`` for older vLLM and ``kv_connector_module_path``)
and the ``vllm.general_plugins`` entry point. Nothing here imports vLLM at package import time.
"""
