"""deploy/grafana/flexkv.json queries only series the engine exports, counters by their
``_total`` sample and gauges by their name, so the dashboard cannot drift from metrics_names();
its panels cover what docs/metrics.md promises."""

from __future__ import annotations

import json
import re

from conftest import REPO
from flexkv.manager import metrics_names

DASHBOARD = REPO / "deploy" / "grafana" / "flexkv.json"


def exprs(dash: dict) -> list:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", ())]


def test_every_queried_series_exists_with_its_kind():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    kinds = {m["name"]: m["kind"] for m in metrics_names()}
    used = set()
    for e in exprs(dash):
        for name in re.findall(r"\$\{prefix\}([a-zA-Z0-9_]+)", e):
            # A counter's sample ends in _total; some gauges' names do too (cpu_blocks_total).
            base = name if kinds.get(name) == "gauge" else name[: -len("_total")] if name.endswith("_total") else name
            assert base in kinds, f"{name} in {e!r} is not exported"
            assert (kinds[base] == "counter") == (base != name), f"{name}: {kinds[base]}"
            used.add(base)
    assert {"matched_tokens", "queried_tokens", "matched_tokens_by_tier", "transfer_bytes", "transfer_seconds_bucket",
            "transfer_failures", "blocks_not_offered", "blocks_failed", "tier_used_blocks", "tier_evictions", "queue_depth",
            "tasks_in_flight", "remote_breaker_open"} <= used


def test_panels_and_variables():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for what in ("hit ratio", "by tier", "gb/s by direction", "failures", "tier usage", "queue depths", "breaker",
                 "not offered", "latency"):
        assert what in titles, what
    prefixes = {o["value"] for v in dash["templating"]["list"] if v["name"] == "prefix" for o in v["options"]}
    assert prefixes == {"flexkv_", "vllm:flexkv_"}  # the standalone endpoint and vLLM's
    assert all('engine=~"$engine"' in e for e in exprs(dash) if "${prefix}" in e)
