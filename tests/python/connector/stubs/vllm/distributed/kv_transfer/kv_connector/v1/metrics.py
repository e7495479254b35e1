"""``KVConnectorStats`` (metrics.py @ 578b601): a dataclass whose ``data`` dict
travels to the front end; subclasses implement the four methods.

``KVConnectorPromMetrics`` and ``KVConnectorProm`` as vLLM has them (metrics.py, 2026): the
front end's PrometheusStatLogger builds one ``KVConnectorProm(vllm_config, labelnames,
per_engine_labelvalues)`` with ``labelnames = ["model_name", "engine"]`` and
``{idx: [served_model_name, str(idx)]}``; it resolves the connector class through the factory and
calls its ``build_prom_metrics(vllm_config, metric_types, labelnames, per_engine_labelvalues)``
with ``metric_types = {Gauge: cls._gauge_cls, Counter: cls._counter_cls, Histogram:
cls._histogram_cls}``; for each engine core output with connector stats it calls
``observe(scheduler_stats.kv_connector_stats, engine_idx)``, i.e. the merged stats' ``data``.
A test points the three class attributes at classes bound to its own CollectorRegistry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

try:  # vLLM depends on prometheus_client; the stub's connector tests need it only for these two
    from prometheus_client import Counter, Gauge, Histogram
except ImportError:  # pragma: no cover
    Counter = Gauge = Histogram = None


@dataclass
class KVConnectorStats:
    data: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        raise NotImplementedError

    def aggregate(self, other: "KVConnectorStats") -> "KVConnectorStats":
        raise NotImplementedError

    def reduce(self) -> dict[str, int | float]:
        raise NotImplementedError

    def is_empty(self) -> bool:
        raise NotImplementedError


class KVConnectorPromMetrics:
    def __init__(self, vllm_config, metric_types: dict, labelnames: list[str],
                 per_engine_labelvalues: dict[int, list[object]]):
        self._kv_transfer_config = vllm_config.kv_transfer_config
        self._gauge_cls = metric_types[Gauge]
        self._counter_cls = metric_types[Counter]
        self._histogram_cls = metric_types[Histogram]
        self._labelnames = labelnames
        self.per_engine_labelvalues = per_engine_labelvalues

    def observe(self, transfer_stats_data: dict[str, Any], engine_idx: int = 0):
        raise NotImplementedError


class KVConnectorProm:
    _gauge_cls = Gauge
    _counter_cls = Counter
    _histogram_cls = Histogram

    def __init__(self, vllm_config, labelnames: list[str], per_engine_labelvalues: dict[int, list[object]]):
        from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

        self.prom_metrics: KVConnectorPromMetrics | None = None
        kv_transfer_config = vllm_config.kv_transfer_config
        if kv_transfer_config and kv_transfer_config.kv_connector:
            connector_cls = KVConnectorFactory.get_connector_class(kv_transfer_config)
            metric_types = {Gauge: self._gauge_cls, Counter: self._counter_cls, Histogram: self._histogram_cls}
            self.prom_metrics = connector_cls.build_prom_metrics(vllm_config, metric_types, labelnames,
                                                                 per_engine_labelvalues)

    def observe(self, transfer_stats_data: dict[str, Any], engine_idx: int = 0):
        if self.prom_metrics is None:
            return
        self.prom_metrics.observe(transfer_stats_data, engine_idx)
