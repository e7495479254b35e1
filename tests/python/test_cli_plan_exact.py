"""flexkv plan at unlimited capacity reproduces the closed-form hit count of a trace exactly, in
both trace formats: a prompt's hit is its longest run of leading full blocks that an earlier
request saved (its full blocks of all tokens but the last, as the engine saves them)."""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

from cli_support import flexkv_json, mooncake_requests, write_mooncake_trace, write_tokens_trace

from flexkv import workload


def closed_form_tokens(requests: Sequence[Tuple[Sequence[int], Sequence[int]]], bs: int) -> int:
    """Matched prompt tokens, summed, with blocks named exactly by (parent block, tokens)."""
    ids: dict = {}
    total = 0
    for prompt, output in requests:
        parent, matched = -1, 0
        for i in range(len(prompt) // bs):
            parent = ids.get((parent, tuple(prompt[i * bs:(i + 1) * bs])))
            if parent is None:
                break
            matched += 1
        total += matched * bs
        seq, parent = list(prompt) + list(output), -1
        for i in range((len(seq) - 1) // bs):
            parent = ids.setdefault((parent, tuple(seq[i * bs:(i + 1) * bs])), len(ids))
    return total


def closed_form_mooncake(requests: List[dict], bs: int, block_tokens: int = 512) -> int:
    """The same count worked out from hash ids alone: two prompts agree on their first
    min(block_tokens x common leading hash ids, both lengths) tokens (distinct hash ids stand for
    distinct tokens, output tokens are in no prompt), and request j saved (p + o - 1) // bs blocks."""
    total = 0
    for i, r in enumerate(requests):
        best = 0
        for q in requests[:i]:
            common = 0
            for a, b in zip(r["hash_ids"], q["hash_ids"]):
                if a != b:
                    break
                common += 1
            shared = min(common * block_tokens, r["input_length"], q["input_length"])
            saved = (q["input_length"] + q["output_length"] - 1) // bs * bs
            best = max(best, min(shared, saved) // bs)
        total += best * bs
    return total


def hits(doc: dict) -> int:
    r = doc["results"][0]
    return r["tokens_not_recomputed"]


def test_unlimited_tokens_trace_matches_the_closed_form(tmp_path):
    reqs = [(r["prompt"], r["output"]) for r in workload.generate(dataclasses.replace(workload.small(3), turns=4))]
    path = write_tokens_trace(tmp_path / "chat.jsonl", reqs)
    for bs in (16, 7):
        doc = flexkv_json("plan", path, "--tokens-per-block", bs)
        assert doc["trace"]["format"] == "tokens" and doc["trace"]["requests"] == len(reqs)
        want = closed_form_tokens(reqs, bs)
        assert want > 0 and hits(doc) == want
        assert doc["results"][0]["hit_ratio"]["ssd"] == 0  # unlimited CPU: everything stays there


def test_unlimited_mooncake_trace_matches_the_closed_form_in_hash_ids(tmp_path):
    reqs = mooncake_requests(seed=5)
    path = write_mooncake_trace(tmp_path / "mooncake.jsonl", reqs)
    for bs in (16, 64, 100):  # 100 does not divide 512: blocks straddle hash ids
        doc = flexkv_json("plan", path, "--tokens-per-block", bs)
        assert doc["trace"]["format"] == "mooncake"
        assert doc["trace"]["prompt_tokens"] == sum(r["input_length"] for r in reqs)
        want = closed_form_mooncake(reqs, bs)
        assert want > 0 and hits(doc) == want, bs


def test_unlimited_with_an_unlimited_ssd_tier_hits_the_same_tokens(tmp_path):
    reqs = mooncake_requests(seed=6)
    path = write_mooncake_trace(tmp_path / "mooncake.jsonl", reqs)
    doc = flexkv_json("plan", path, "--cpu", "inf", "--ssd", "0,inf")
    assert [hits(doc)] * 2 == [r["tokens_not_recomputed"] for r in doc["results"]]
    assert hits(doc) == closed_form_mooncake(reqs, 16)


def test_generated_chat_trace_matches_the_closed_form():
    params = workload.small(0)
    reqs = [(r["prompt"], r["output"]) for r in workload.generate(params)]
    doc = flexkv_json("plan", "--generate", "chat", "--seed", "0", "--conversations", params.conversations,
                      "--turns", params.turns)
    assert doc["trace"]["source"] == "generate:chat" and doc["trace"]["requests"] == len(reqs)
    assert hits(doc) == closed_form_tokens(reqs, 16)
