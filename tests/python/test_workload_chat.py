"""The chat trace generator: deterministic by seed, and the prefix sharing it promises."""

from __future__ import annotations

import dataclasses

import pytest

from flexkv import workload
from flexkv.workload import ChatParams


def tiny(**kw) -> ChatParams:
    base = dict(conversations=6, turns=3, system_prompts=2, system_tokens=64,
                user_min=5, user_max=40, answer_min=3, answer_max=30, vocab_size=1000)
    base.update(kw)
    return ChatParams(**base)


def test_same_parameters_give_the_same_trace_and_another_seed_another():
    a = list(workload.generate(tiny(seed=3)))
    assert a == list(workload.generate(tiny(seed=3)))
    b = list(workload.generate(tiny(seed=4)))
    assert [r["prompt"] for r in a] != [r["prompt"] for r in b]


def test_defaults_and_the_small_preset():
    d = ChatParams()
    assert (d.conversations, d.turns, d.system_prompts, d.system_tokens) == (64, 8, 4, 2048)
    assert (d.user_min, d.user_max, d.answer_min, d.answer_max, d.vocab_size) == (256, 1024, 128, 512, 151936)
    s = workload.small(7)
    assert (s.seed, s.conversations, s.turns) == (7, 8, 3)
    assert dataclasses.replace(s, conversations=64, turns=8, seed=0) == d


def test_rounds_hold_every_conversation_once_in_a_seeded_order():
    p = tiny(conversations=10, turns=4)
    reqs = list(workload.generate(p))
    assert len(reqs) == 40
    orders = []
    for turn in range(4):
        rnd = reqs[turn * 10:(turn + 1) * 10]
        assert {r["turn"] for r in rnd} == {turn}
        assert sorted(r["conv"] for r in rnd) == list(range(10))
        assert all(r["id"] == f"c{r['conv']}-t{turn}" for r in rnd)
        orders.append([r["conv"] for r in rnd])
    assert len({tuple(o) for o in orders}) > 1, "every round has the same order: not shuffled"


def test_each_turn_extends_the_previous_prompt_and_answer():
    p = tiny()
    by_conv = {}
    for r in workload.generate(p):
        prev = by_conv.get(r["conv"])
        if prev is None:
            assert r["turn"] == 0
            user = len(r["prompt"]) - p.system_tokens
        else:
            context = prev["prompt"] + prev["output"]
            assert r["prompt"][:len(context)] == context
            user = len(r["prompt"]) - len(context)
        assert p.user_min <= user <= p.user_max
        assert p.answer_min <= len(r["output"]) <= p.answer_max
        assert all(0 <= t < p.vocab_size for t in r["prompt"] + r["output"])
        by_conv[r["conv"]] = r


def test_conversations_share_system_prompts_and_nothing_after_them():
    p = tiny(conversations=9, system_prompts=3)
    first = {r["conv"]: r["prompt"] for r in workload.generate(p) if r["turn"] == 0}
    systems = {tuple(prompt[:p.system_tokens]) for prompt in first.values()}
    assert 1 < len(systems) <= 3  # nine conversations over three prompts: some share one
    # Past the system prompt, random user tokens from a vocabulary of 1000 diverge at once.
    tails = [prompt[p.system_tokens:p.system_tokens + 4] for prompt in first.values()]
    assert len({tuple(t) for t in tails}) == len(tails)


def test_more_turns_or_conversations_leave_the_existing_ones_unchanged():
    base = {r["id"]: r for r in workload.generate(tiny())}
    for bigger in (tiny(turns=5), tiny(conversations=9)):
        grown = {r["id"]: r for r in workload.generate(bigger)}
        assert all(grown[i] == r for i, r in base.items())


@pytest.mark.parametrize("bad", [dict(conversations=0), dict(turns=0), dict(system_prompts=0),
                                 dict(user_min=50, user_max=40), dict(answer_min=-1), dict(vocab_size=0),
                                 dict(system_tokens=-1)])
def test_impossible_parameters_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        tiny(**bad)
