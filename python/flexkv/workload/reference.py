"""A plain-Python reference replay: the matched tokens a prefix cache must report on a trace.

Replay semantics (what ``flexkv.PrefixIndex`` implements, checked against this in the tests):

* Tokens are grouped in full blocks of ``tokens_per_block``; a trailing partial block is never
  matched nor stored. A block is identified by its whole prefix: block i of a sequence stands
  for ``tokens[: (i + 1) * tokens_per_block]``, so two sequences share a block exactly when they
  agree on every token up to its end.
* For each request, in trace order: ``match(prompt)`` is ``tokens_per_block`` times the longest
  run of leading prompt blocks that are cached; then ``insert(prompt + output)`` stores the full
  blocks after the longest cached prefix of ``prompt + output``.
* Capacity is counted in blocks (``None``: unlimited). When an insert needs room, it evicts the
  least recently used leaf block (a cached block with no cached child), never the block being
  extended (the last block of the cached prefix), one at a time until the new blocks fit or no
  leaf can go; then it stores as many of the new blocks as fit, in order.
* Each match and each insert is one use, at one tick of a logical clock: every block it walks
  (the matched run, the cached prefix and the newly stored blocks) was last used at that tick.

This model keys blocks exactly (parent block, tuple of the block's tokens), so there are no
hash collisions to reason about, and it keeps the cache's leaves in a set: an eviction scans it
for the least recently used one. Chat traces keep few leaves (about one per conversation), so
the scan is cheap; it is a model for checking, not a fast cache.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

_ROOT = -1  # the parent of a sequence's first block


class _Block:
    __slots__ = ("key", "parent", "children", "last_use")

    def __init__(self, key: tuple, parent: int, last_use: int) -> None:
        self.key, self.parent, self.children, self.last_use = key, parent, 0, last_use


class ReferenceCache:
    """An exact prefix cache with LRU eviction of leaf blocks (see the module docstring)."""

    def __init__(self, tokens_per_block: int = 16, capacity: Optional[int] = None) -> None:
        if tokens_per_block < 1:
            raise ValueError(f"tokens_per_block must be >= 1, got {tokens_per_block}")
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1 block or None, got {capacity}")
        self.tokens_per_block, self.capacity = tokens_per_block, capacity
        self._ids: Dict[Tuple[int, tuple], int] = {}  # (parent id, block tokens) -> block id
        self._blocks: Dict[int, _Block] = {}
        self._leaves: Set[int] = set()
        self._next_id = 0
        self._clock = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._blocks)

    def match(self, tokens: Sequence[int]) -> int:
        """Cached leading tokens of ``tokens`` (a multiple of the block size); one use."""
        self._clock += 1
        return len(self._cached_prefix(tokens)) * self.tokens_per_block

    def insert(self, tokens: Sequence[int]) -> int:
        """Stores the uncached full blocks of ``tokens``; one use. Returns the blocks stored."""
        self._clock += 1
        run = self._cached_prefix(tokens)
        parent = run[-1] if run else _ROOT
        bs, stored = self.tokens_per_block, 0
        for i in range(len(run), len(tokens) // bs):
            if not self._make_room(protect=parent):
                break
            parent = self._add(parent, tuple(tokens[i * bs:(i + 1) * bs]))
            stored += 1
        return stored

    def _cached_prefix(self, tokens: Sequence[int]) -> List[int]:
        """Ids of the longest run of cached leading blocks, each marked as used now."""
        bs, run, parent = self.tokens_per_block, [], _ROOT
        for i in range(len(tokens) // bs):
            block = self._ids.get((parent, tuple(tokens[i * bs:(i + 1) * bs])))
            if block is None:
                break
            self._blocks[block].last_use = self._clock
            run.append(block)
            parent = block
        return run

    def _add(self, parent: int, key: tuple) -> int:
        block, self._next_id = self._next_id, self._next_id + 1
        self._ids[(parent, key)] = block
        self._blocks[block] = _Block(key, parent, self._clock)
        self._leaves.add(block)
        if parent != _ROOT:
            self._blocks[parent].children += 1
            self._leaves.discard(parent)
        return block

    def _make_room(self, protect: int) -> bool:
        """Whether one more block fits, after evicting the least recently used other leaf if needed."""
        if self.capacity is None or len(self._blocks) < self.capacity:
            return True
        candidates = [b for b in self._leaves if b != protect]
        if not candidates:
            return False
        # Ties cannot arise in a replay (a use touches one chain, which holds at most one leaf);
        # the id (creation order) makes the choice deterministic anyway.
        victim = min(candidates, key=lambda b: (self._blocks[b].last_use, b))
        gone = self._blocks.pop(victim)
        del self._ids[(gone.parent, gone.key)]
        self._leaves.discard(victim)
        self.evictions += 1
        if gone.parent != _ROOT:
            parent = self._blocks[gone.parent]
            parent.children -= 1
            if parent.children == 0:
                self._leaves.add(gone.parent)
        return True


@dataclasses.dataclass
class ReplayResult:
    """What a replay gives: per-request matches and totals."""

    matched: List[int]      # matched prompt tokens, per request in trace order
    prompt_tokens: int
    stored_blocks: int
    evicted_blocks: int

    @property
    def matched_tokens(self) -> int:
        return sum(self.matched)

    @property
    def hit_ratio(self) -> float:
        return self.matched_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def replay(requests: Iterable[dict], tokens_per_block: int = 16, capacity: Optional[int] = None) -> ReplayResult:
    """Replays ``requests`` (dicts with ``prompt`` and ``output``) through a :class:`ReferenceCache`."""
    cache = ReferenceCache(tokens_per_block, capacity)
    matched, prompt_tokens, stored = [], 0, 0
    for r in requests:
        matched.append(cache.match(r["prompt"]))
        stored += cache.insert(list(r["prompt"]) + list(r["output"]))
        prompt_tokens += len(r["prompt"])
    return ReplayResult(matched, prompt_tokens, stored, cache.evictions)
