"""flexkv plan's tiered result is the engine's own behaviour: the same trace driven through the
real engine (flexkv.KVManager with 64-byte blocks, a CPU tier, an SSD tier in a temporary
directory and a host-memory KV cache of a few blocks) loads the same blocks from each tier,
request by request."""

from __future__ import annotations

import dataclasses

import pytest
from cli_support import flexkv_json, write_tokens_trace
from engine_replay import replay as engine_replay

from flexkv import workload
from flexkv.tier_planner import TierPlanner


@pytest.fixture(scope="module")
def chat():
    params = dataclasses.replace(workload.small(1), conversations=16, turns=4)
    return [(r["prompt"], r["output"]) for r in workload.generate(params)]


def planned(reqs, bs, cpu, ssd):
    tokens, prompt, total = [], [], []
    for p, o in reqs:
        tokens += list(p) + list(o)
        prompt.append(len(p))
        total.append(len(p) + len(o))
    with TierPlanner(bs, cpu, ssd) as planner:
        per_request = list(zip(*planner.replay(tokens, prompt, total, per_request=True)))
        return per_request, planner.stats()


# (tokens per block, CPU blocks, SSD blocks): CPU only with evictions; a small CPU before an SSD
# that never fills; both tiers evicting; a CPU so small that SSD matches are cut for staging.
CASES = [(16, 400, 0), (16, 300, 20000), (16, 300, 1200), (16, 150, 900), (8, 200, 2500)]


@pytest.mark.parametrize("bs,cpu,ssd", CASES)
def test_planner_loads_what_the_engine_loads_per_request_and_tier(chat, tmp_path, bs, cpu, ssd):
    engine = engine_replay(chat, bs, cpu, ssd, str(tmp_path / "ssd"))
    plan, stats = planned(chat, bs, cpu, ssd)
    assert plan == engine
    assert sum(c for c, _, _ in engine) > 0
    if ssd:
        assert sum(s for _, s, _ in engine) > 0  # the SSD tier served something: the case tests it
    if (bs, cpu, ssd) == (16, 300, 1200):
        assert stats["ssd_evictions"] > 0 and stats["cpu_evictions"] > 0
    if (bs, cpu, ssd) == (8, 200, 2500):
        assert stats["staging_cut_blocks"] > 0


def test_flexkv_plan_command_reports_the_engines_totals(chat, tmp_path):
    bs, cpu, ssd = 16, 300, 1200
    engine = engine_replay(chat, bs, cpu, ssd, str(tmp_path / "ssd"))
    path = write_tokens_trace(tmp_path / "chat.jsonl", chat)
    doc = flexkv_json("plan", path, "--cpu", f"{cpu}b", "--ssd", f"{ssd}b", "--tokens-per-block", bs)
    blocks = doc["results"][0]["blocks"]
    assert blocks["loaded_from_cpu"] == sum(c for c, _, _ in engine)
    assert blocks["loaded_from_ssd"] == sum(s for _, s, _ in engine)
    assert blocks["not_loaded"] == sum(f for _, _, f in engine)
    prompt = sum(len(p) for p, _ in chat)
    assert doc["results"][0]["hit_ratio"]["ssd"] == pytest.approx(blocks["loaded_from_ssd"] * bs / prompt)
