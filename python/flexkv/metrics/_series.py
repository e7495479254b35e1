"""The engine's metrics snapshot as Prometheus families, derived from ``metrics_names()`` alone,
so a metric the engine adds needs no change here.

A names entry is ``{"name", "kind", "help"}`` with an optional ``"labels"`` object. The kinds:

* ``counter``: only grows. ``gauge``: a level.
* ``histogram``: one histogram is several entries of one kind ``histogram``, Prometheus's own
  spelling: ``<base>_bucket`` with an ``le`` label (the bucket's upper bound as text, e.g.
  ``"0.001"``; its value counts the observations <= le, cumulative as in Prometheus; the
  ``"+Inf"`` bucket may be left out), ``<base>_sum`` and ``<base>_count``. Values are int64, so
  the sum of a histogram whose base name ends in ``_seconds`` is kept in microseconds and
  exported divided by 1e6; other sums are exported as they are (bytes, tokens, ...). The other
  labels of the three entries name which histogram they belong to (e.g. ``direction``).

Entries of one name may carry labels (``matched_tokens`` with ``{"tier": "cpu"}``,
``{"tier": "ssd"}``, ...); the family's label names are the union over its entries, a label an
entry lacks reads as "". Give every entry of one name the same label keys: a sum over the
labels then counts each event once.

Each entry has a key, ``name`` or ``name{k=v,...}`` (label keys sorted), which names it in the
per-step stats dicts the vLLM connector ships (FlexKVStats.data).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

logger = logging.getLogger("flexkv.metrics")

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
MONOTONIC_KINDS = (COUNTER, HISTOGRAM)  # reported as per-step differences; anything else is a level
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Label names the exporters add themselves (engine, vLLM's model_name) or Prometheus reserves.
_RESERVED_LABELS = {"engine", "model_name", "le"}
_PARTS = ("_bucket", "_sum", "_count")
MICROS_PER_SECOND = 1e6


def key_of(name: str, labels: Optional[Mapping[str, str]] = None) -> str:
    """The entry's key in the per-step stats: the name, with its labels when it has any."""
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


@dataclass(frozen=True)
class Entry:
    """One position of the snapshot."""

    index: int
    name: str
    kind: str
    help: str
    labels: Tuple[Tuple[str, str], ...]
    key: str


@dataclass
class HistogramSeries:
    """The entries of one histogram (one set of non-``le`` label values)."""

    buckets: List[Tuple[str, Entry]] = field(default_factory=list)  # (le, entry), sorted by bound
    sum: Optional[Entry] = None
    count: Optional[Entry] = None


@dataclass
class Family:
    """One exported metric: its entries share a name (for histograms, a base name)."""

    name: str
    kind: str
    help: str
    labelnames: Tuple[str, ...]
    entries: List[Entry] = field(default_factory=list)  # counter and gauge: one sample each
    histograms: Dict[Tuple[str, ...], HistogramSeries] = field(default_factory=dict)  # histogram: by label values

    def labelvalues(self, entry: Entry) -> Tuple[str, ...]:
        given = dict(entry.labels)
        return tuple(given.get(k, "") for k in self.labelnames)

    @property
    def sum_scale(self) -> float:
        return 1.0 / MICROS_PER_SECOND if self.name.endswith("_seconds") else 1.0

    def bounds(self) -> List[float]:
        """The finite bucket bounds, the same for every histogram of the family (the first one's)."""
        first = next(iter(self.histograms.values()), None)
        return [bound(le) for le, _ in first.buckets if bound(le) != float("inf")] if first else []


def bound(le: str) -> float:
    """A bucket's upper bound as a number (+Inf included)."""
    return float("inf") if le.strip() in ("+Inf", "Inf", "inf") else float(le)


def _entry(i: int, raw: Mapping) -> Optional[Entry]:
    name, kind = raw.get("name"), raw.get("kind")
    labels = raw.get("labels") or {}
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(labels, Mapping):
        logger.warning("FlexKv metrics: entry %d (%r) has no valid name or labels; not exported", i, name)
        return None
    bad = [k for k in labels if not isinstance(k, str) or not _NAME.match(k) or k.startswith("__")
           or (k in _RESERVED_LABELS and not (k == "le" and kind == HISTOGRAM and name.endswith("_bucket")))]
    if bad:
        logger.warning("FlexKv metrics: %s has reserved or invalid label names %s; not exported", name, bad)
        return None
    if kind == HISTOGRAM and (not name.endswith(_PARTS) or (name.endswith("_bucket") and "le" not in labels)):
        logger.warning("FlexKv metrics: histogram entry %s is not <base>_bucket{le}, _sum or _count; "
                       "not exported", name)
        return None
    if kind == HISTOGRAM and name.endswith("_bucket"):
        try:
            bound(str(labels["le"]))
        except ValueError:
            logger.warning("FlexKv metrics: %s has le=%r, not a number; not exported", name, labels["le"])
            return None
    if kind not in (COUNTER, GAUGE, HISTOGRAM):
        kind = GAUGE  # an unknown kind is a level: exported as it reads
    lab = tuple((str(k), str(v)) for k, v in labels.items())
    return Entry(i, name, kind, str(raw.get("help", "")), lab, key_of(name, dict(lab)))


def families(names: Sequence[Mapping]) -> List[Family]:
    """The families of a names list, in the order of their first entry."""
    out: Dict[str, Family] = {}
    for i, raw in enumerate(names):
        e = _entry(i, raw)
        if e is None:
            continue
        if e.kind == HISTOGRAM:
            base = next(e.name[: -len(p)] for p in _PARTS if e.name.endswith(p))
            fam = out.get(base)
            if fam is None:
                fam = out[base] = Family(base, HISTOGRAM, e.help, ())
            keys = tuple(k for k, _ in e.labels if k != "le")
            fam.labelnames = fam.labelnames + tuple(k for k in keys if k not in fam.labelnames)
            fam.entries.append(e)
            if e.help and e.name.endswith("_count"):
                fam.help = e.help  # the _count entry says what is observed
            continue
        fam = out.get(e.name)
        if fam is None:
            fam = out[e.name] = Family(e.name, e.kind, e.help, ())
        elif fam.kind != e.kind:
            logger.warning("FlexKv metrics: %s is both %s and %s; the %s entry is not exported",
                           e.name, fam.kind, e.kind, e.kind)
            continue
        fam.labelnames = fam.labelnames + tuple(k for k, _ in e.labels if k not in fam.labelnames)
        fam.entries.append(e)
    for fam in out.values():
        if fam.kind == HISTOGRAM:
            _group(fam)
    return [f for f in out.values() if f.kind != HISTOGRAM or f.histograms]


def _group(fam: Family) -> None:
    """Sorts a histogram family's entries into one HistogramSeries per label values."""
    for e in fam.entries:
        values = fam.labelvalues(e)
        h = fam.histograms.setdefault(values, HistogramSeries())
        if e.name.endswith("_bucket"):
            h.buckets.append((dict(e.labels)["le"], e))
        elif e.name.endswith("_sum"):
            h.sum = e
        else:
            h.count = e
    for values, h in list(fam.histograms.items()):
        h.buckets.sort(key=lambda b: bound(b[0]))
        if not h.buckets and h.count is None:
            logger.warning("FlexKv metrics: histogram %s%s has neither buckets nor a count; not exported",
                           fam.name, values)
            del fam.histograms[values]


def histogram_buckets(h: HistogramSeries, values: Sequence[int]) -> List[Tuple[str, float]]:
    """Cumulative (le, count) pairs ending in +Inf, as Prometheus's text format wants them: the
    +Inf bucket is the _count entry where the engine gives no +Inf bucket."""
    out = [("+Inf" if bound(le) == float("inf") else le, float(values[e.index])) for le, e in h.buckets]
    if not out or out[-1][0] != "+Inf":
        total = values[h.count.index] if h.count is not None else (out[-1][1] if out else 0)
        out.append(("+Inf", float(total)))
    return out
