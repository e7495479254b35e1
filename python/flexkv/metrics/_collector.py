"""A prometheus_client custom collector: at each scrape it reads every attached engine's
snapshot (one native call each, without the engine lock the scheduler's calls take) and yields
one family per entry group of metrics_names(), then FlexKV's series. Importing it needs
prometheus_client."""

from __future__ import annotations

import logging
from typing import Callable, Iterable, List, Sequence, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import _engines, _series, _snapshot
from ._flexkv_names import NAMES as FLEXKV_NAMES
from ._flexkv_names import FlexKVNames

logger = logging.getLogger("flexkv.metrics")
PREFIX = "flexkv_"


class EngineCollector:
    """Series ``flexkv_<name>`` with an ``engine`` label, plus FlexKV's names."""

    def __init__(self, engines: Callable[[], Sequence[Tuple[str, object]]] = _engines.live,
                 names: Callable[[], list] = None, flexkv_names: bool = True) -> None:
        if names is None:
            from ..manager import metrics_names as names
        self._engines, self._names = engines, names
        self._flexkv = FlexKVNames() if flexkv_names else None
        self._failed: set = set()
        self._parsed: Tuple[object, list] = (None, [])

    def _families(self, names: list) -> List[_series.Family]:
        # metrics_names() is read once per process: parse (and warn about bad entries) once too.
        if self._parsed[0] is not names:
            self._parsed = (names, [f for f in _series.families(names) if PREFIX + f.name not in FLEXKV_NAMES])
        return self._parsed[1]

    def collect(self) -> Iterable:
        names = self._names()
        fams = self._families(names)
        read: List[Tuple[str, object, list]] = []
        for label, m in self._engines():
            try:
                read.append((label, m, _snapshot.read(m, len(names))))
            except Exception as e:  # closed meanwhile, or forked: leave it out of this scrape
                if label not in self._failed:
                    self._failed.add(label)
                    logger.warning("FlexKv metrics: engine %s could not be read: %s", label, e)
        for fam in fams:
            yield _family(fam, read)
        if self._flexkv is not None:
            keys = [_series.key_of(m.get("name", ""), m.get("labels")) for m in names]
            engines = [(label, getattr(m, "tokens_per_block", 16), dict(zip(keys, v))) for label, m, v in read]
            for s in self._flexkv.series(engines):
                cls = CounterMetricFamily if s.kind == "counter" else GaugeMetricFamily
                f = cls(s.name, s.help, labels=s.labelnames)
                for lv, value in s.samples:
                    f.add_metric(lv, value)
                yield f


def _family(fam: _series.Family, read: Sequence[Tuple[str, object, list]]):
    labels = ("engine",) + fam.labelnames
    name = PREFIX + fam.name
    if fam.kind == _series.HISTOGRAM:
        f = HistogramMetricFamily(name, fam.help, labels=labels)
        for label, _, values in read:
            for lv, h in fam.histograms.items():
                total = values[h.sum.index] * fam.sum_scale if h.sum is not None else 0.0
                f.add_metric((label,) + lv, _series.histogram_buckets(h, values), total)
        return f
    f = (CounterMetricFamily if fam.kind == _series.COUNTER else GaugeMetricFamily)(name, fam.help, labels=labels)
    for label, _, values in read:
        for e in fam.entries:
            f.add_metric((label,) + fam.labelvalues(e), float(values[e.index]))
    return f
