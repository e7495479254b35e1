"""docs/metrics.md names every series of the snapshot and every FlexKV series, mapped or not,
so the documentation cannot fall behind the engine or the mapping."""

from __future__ import annotations

from conftest import REPO
from flexkv import metrics
from flexkv.manager import metrics_names


def test_every_series_is_documented():
    doc = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    names = {f.name for f in metrics.families(metrics_names())}  # a histogram by its base name
    missing = sorted(n for n in names if f"| `{n}` |" not in doc)
    assert missing == [], "add them to the table in docs/metrics.md"
    for name in metrics.FLEXKV_NAMES:
        assert f"`{name}_total`" in doc or f"`{name}`" in doc, name
    for name in metrics.FLEXKV_NOT_MAPPED:
        assert f"`{name}`" in doc, name
