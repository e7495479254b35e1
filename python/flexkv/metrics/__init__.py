"""FlexKv's metrics for Prometheus (docs/metrics.md).

Every entry of :func:`flexkv.manager.metrics_names` becomes a series by itself (see
:mod:`flexkv.metrics._series` for the names, labels and histogram conventions), in two places:

* the standalone endpoint (:mod:`flexkv.metrics.exporter`): ``FLEXKV_ENABLE_METRICS=1`` serves
  ``flexkv_<name>`` with an ``engine`` label, and FlexKV's own series names, on
  ``127.0.0.1:8080/metrics``;
* vLLM's ``/metrics``: ``FlexKVConnectorV1.build_prom_metrics`` registers ``vllm:flexkv_<name>``
  with vLLM's metric classes and labels (flexkv.integration.vllm._prom).

Importing this package needs only the standard library; prometheus_client is imported when an
endpoint starts.
"""

from ._flexkv_names import NAMES as FLEXKV_NAMES
from ._flexkv_names import NOT_MAPPED as FLEXKV_NOT_MAPPED
from ._engines import label as engine_label
from ._series import families, key_of
from ._snapshot import by_key as snapshot
from ._summary import summary_lines
from .exporter import address, start, stop

__all__ = ["start", "stop", "address", "engine_label", "snapshot", "summary_lines", "families", "key_of",
           "FLEXKV_NAMES", "FLEXKV_NOT_MAPPED"]
