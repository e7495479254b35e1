"""The reference replay's semantics on hand-made sequences (blocks of 4 tokens)."""

from __future__ import annotations

import pytest

from flexkv.workload import ReferenceCache, replay

A, B, C, D, X, Y = ([k] * 4 for k in range(1, 7))  # one block of tokens each


def test_only_full_blocks_count_and_a_block_is_its_whole_prefix():
    c = ReferenceCache(4)
    assert c.insert(A + B + [9, 9]) == 2          # the partial block is not stored
    assert c.match(A + B + [9, 9, 9, 9]) == 8
    assert c.match(A + [9, 9]) == 4
    assert c.match(X + B) == 0                     # B after another prefix is another block
    assert c.insert(A + B + C) == 1 and len(c) == 3


def test_match_stops_at_the_first_missing_block():
    c = ReferenceCache(4)
    c.insert(A + B + C)
    assert c.match(A + X + C) == 4


def test_full_cache_evicts_the_least_recently_used_leaf_and_a_match_is_a_use():
    c = ReferenceCache(4, capacity=2)
    c.insert(A)
    c.insert(B)
    assert c.match(A) == 4                         # A is now used after B
    assert c.insert(C) == 1 and c.evictions == 1
    assert c.match(A) == 4 and c.match(B) == 0 and c.match(C) == 4


def test_inner_blocks_go_only_after_their_children():
    c = ReferenceCache(4, capacity=3)
    c.insert(A + B)                                # A is B's parent: only B is a leaf
    c.insert(X)
    c.insert(Y + C)                                # evicts B (oldest leaf), then A (a leaf now)
    assert c.evictions == 2 and len(c) == 3
    assert c.match(A) == 0 and c.match(X) == 4 and c.match(Y + C) == 8


def test_the_block_being_extended_is_never_evicted():
    c = ReferenceCache(4, capacity=2)
    c.insert(A + B)
    assert c.insert(A + B + C + D) == 0            # B is the only leaf and is being extended
    assert c.evictions == 0 and c.match(A + B) == 8
    c.insert(X)                                    # an unrelated sequence may take B's place
    assert c.match(A + B) == 4 and c.match(X) == 4


def test_an_insert_stores_what_fits_after_evicting():
    c = ReferenceCache(4, capacity=3)
    c.insert(X)
    assert c.insert(A + B + C + D) == 3            # A, B fit; X goes for C; D finds only C, extended
    assert c.match(A + B + C + D) == 12 and c.match(X) == 0


def test_replay_totals_and_unlimited_capacity():
    # The first answer completes the first prompt's partial block, so the second prompt matches all three blocks.
    reqs = [{"prompt": A + [0], "output": [0, 0, 0] + B}, {"prompt": A + [0] * 4 + B + [1], "output": []},
            {"prompt": X, "output": []}]
    r = replay(reqs, 4)
    assert r.matched == [0, 12, 0] and r.matched_tokens == 12
    assert r.prompt_tokens == 22 and r.stored_blocks == 4 and r.evicted_blocks == 0
    assert r.hit_ratio == pytest.approx(12 / 22)


@pytest.mark.parametrize("kw", [dict(tokens_per_block=0), dict(capacity=0)])
def test_impossible_settings_are_refused(kw):
    with pytest.raises(ValueError):
        ReferenceCache(**kw)
