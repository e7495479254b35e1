"""FlexKv's series on vLLM's ``/metrics``: what ``FlexKVConnectorV1.build_prom_metrics`` returns.

vLLM's front end (PrometheusStatLogger, through KVConnectorProm) calls the connector class's
``build_prom_metrics(vllm_config, metric_types, labelnames, per_engine_labelvalues)`` once, with
its own metric classes (``metric_types[Counter]`` etc.: prometheus_client's, or Ray's wrappers),
its label names (``["model_name", "engine"]``) and one list of label values per engine index
(``{0: [model, "0"], ...}``). Each entry group of metrics_names() becomes one vLLM metric named
``vllm:flexkv_<name>`` with those labels first and the entry's own labels after them (the
``vllm`` in the name also lets vLLM's unregister_vllm_metrics() clear them when it starts anew).

Then, for every engine core output that carries connector stats, vLLM calls
``observe(data, engine_idx)`` with the step's ``FlexKVStats.data`` after vLLM merged the workers'
stats into the scheduler's (``KVConnectorStats.aggregate``): counter differences are added
(Counter.inc), gauges set. Only the scheduler side reports counters (the workers send nothing
but their step), so tensor-parallel ranks never multiply them.

The names come from libflexkv, which the front end loads for that (it runs no engine there;
vLLM started its engine core processes before it builds its stat loggers).

Histograms: vLLM's Histogram only takes single observations, and the engine reports bucket
counts; with prometheus_client's Histogram the bucket and sum differences are added to the
child's values directly, as observe() itself would. With a metric class that lacks them (Ray's
wrappers) histograms are left out, with one warning.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ...metrics import _series
from . import _log

PREFIX = "vllm:flexkv_"

try:  # vLLM >= 0.11 (connector Prometheus metrics); the keys of metric_types are these classes
    from prometheus_client import Counter, Gauge, Histogram
    from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorPromMetrics as _Base
except ImportError:  # pragma: no cover - such a vLLM never calls build_prom_metrics
    Counter = Gauge = Histogram = None
    _Base = object


def _gauge(cls, name: str, doc: str, labelnames: List[str]):
    # vLLM's own gauges are "mostrecent" (its multiprocess mode keeps the latest write); older
    # prometheus_client lacks that mode: "livemax" then, also right for one writer per engine.
    try:
        return cls(name=name, documentation=doc, labelnames=labelnames, multiprocess_mode="mostrecent")
    except ValueError:
        return cls(name=name, documentation=doc, labelnames=labelnames, multiprocess_mode="livemax")


class _HistogramSink:
    """Adds per-step bucket and sum differences to one histogram child per label values.

    The step's counters hold how much each cumulative bucket (observations <= le) grew; a
    prometheus_client child keeps one count per bucket (le_{i-1}, le_i] and +Inf, so the
    differences of neighbouring buckets are added, as observe() would have added them.
    """

    def __init__(self, fam: _series.Family, children: Dict[Tuple[str, ...], Any]) -> None:
        self.fam, self.children = fam, children

    def add(self, counters: Mapping[str, int]) -> None:
        inf = float("inf")
        for lv, h in self.fam.histograms.items():
            child = self.children[lv]
            finite = [counters.get(e.key, 0) for le, e in h.buckets if _series.bound(le) != inf]
            given_inf = [counters.get(e.key, 0) for le, e in h.buckets if _series.bound(le) == inf]
            total = counters.get(h.count.key, 0) if h.count is not None else (given_inf or finite or [0])[-1]
            grown = finite + [total]
            if len(grown) != len(child._buckets):
                continue  # bounds unlike the first histogram's (a names list to fix): left out
            below = 0
            for i, cum in enumerate(grown):
                if cum > below:
                    child._buckets[i].inc(cum - below)
                below = max(below, cum)
            if h.sum is not None and counters.get(h.sum.key, 0) > 0:
                child._sum.inc(counters[h.sum.key] * self.fam.sum_scale)


class FlexKVPromMetrics(_Base):
    def __init__(self, vllm_config, metric_types: Mapping[type, type], labelnames: Sequence[str],
                 per_engine_labelvalues: Mapping[int, Sequence[object]], names: Sequence[Mapping]) -> None:
        if _Base is not object:
            super().__init__(vllm_config, metric_types, list(labelnames), dict(per_engine_labelvalues))
        self.per_engine_labelvalues = dict(per_engine_labelvalues)
        # (engine index, entry key) -> child; histograms by engine index.
        self._counters: Dict[Tuple[int, str], Any] = {}
        self._gauges: Dict[Tuple[int, str], Any] = {}
        self._histograms: Dict[int, List[_HistogramSink]] = {idx: [] for idx in self.per_engine_labelvalues}
        for fam in _series.families(names):
            self._register(fam, metric_types, list(labelnames))

    def _register(self, fam: _series.Family, types: Mapping[type, type], labelnames: List[str]) -> None:
        names = labelnames + list(fam.labelnames)
        doc = fam.help or fam.name
        if fam.kind == _series.HISTOGRAM:
            metric = types[Histogram](name=PREFIX + fam.name, documentation=doc, labelnames=names,
                                      buckets=fam.bounds())
            for idx, values in self.per_engine_labelvalues.items():
                children = {lv: metric.labels(*(list(values) + list(lv))) for lv in fam.histograms}
                if not all(hasattr(c, "_buckets") and hasattr(c, "_sum") for c in children.values()):
                    _log.once("prom-histogram", "vLLM's histogram class %s takes single observations only; "
                              "FlexKv's histograms are not exported to vLLM's /metrics", types[Histogram].__name__)
                    return
                self._histograms[idx].append(_HistogramSink(fam, children))
            return
        if fam.kind == _series.COUNTER:
            metric, into = types[Counter](name=PREFIX + fam.name, documentation=doc, labelnames=names), self._counters
        else:
            metric, into = _gauge(types[Gauge], PREFIX + fam.name, doc, names), self._gauges
        for idx, values in self.per_engine_labelvalues.items():
            for e in fam.entries:
                into[(idx, e.key)] = metric.labels(*(list(values) + list(fam.labelvalues(e))))

    def observe(self, transfer_stats_data: Dict[str, Any], engine_idx: int = 0) -> None:
        data = transfer_stats_data or {}
        counters = data.get("counters") or {}
        for key, delta in counters.items():
            child = self._counters.get((engine_idx, key))
            if child is not None and delta > 0:  # a counter never goes down, whatever arrives
                child.inc(delta)
        if counters:
            for sink in self._histograms.get(engine_idx, ()):
                sink.add(counters)
        for key, level in (data.get("gauges") or {}).items():
            child = self._gauges.get((engine_idx, key))
            if child is not None:
                child.set(level)


def build(vllm_config, metric_types, labelnames, per_engine_labelvalues):
    """FlexKVPromMetrics over this library's metrics_names(), or None (logged once) when vLLM
    has no connector metrics or the library cannot be loaded here."""
    if Counter is None or _Base is object:
        return None
    try:
        from ...manager import metrics_names

        names = metrics_names()
    except Exception as e:  # the front end could not load libflexkv: vLLM serves without our series
        _log.once("prom-names", "FlexKv's series are not exported to vLLM's /metrics: %s", e)
        return None
    return FlexKVPromMetrics(vllm_config, metric_types, labelnames, per_engine_labelvalues, names)
