"""A deterministic multi-turn chat workload: the trace the replay benchmarks and tests use.

Each conversation opens with one of a few shared system prompts; every turn appends a user
message, is issued as one request (prompt = everything so far), and then appends the model's
answer. Requests go round by round (round k is turn k of every conversation, turns counted
from 0) in a seeded shuffle per round, so conversations interleave the way a server sees them.
Lengths are uniform in their inclusive ranges and token ids uniform in ``0..vocab_size-1``.

Every random choice comes from its own stream, named by what it draws (a system prompt, a
conversation, a round's order) and seeded from that name through SHA-256: adding
conversations or turns does not change the ones already there, and the same parameters give
the same trace on any platform and Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Dict, Iterator, List

VOCAB_SIZE = 151936  # Qwen2's vocabulary: realistic token ids


@dataclasses.dataclass(frozen=True)
class ChatParams:
    """Everything that determines a trace (written into the trace file's header)."""

    seed: int = 0
    conversations: int = 64
    turns: int = 8
    system_prompts: int = 4
    system_tokens: int = 2048
    user_min: int = 256
    user_max: int = 1024
    answer_min: int = 128
    answer_max: int = 512
    vocab_size: int = VOCAB_SIZE

    def __post_init__(self) -> None:
        for name in ("conversations", "turns", "system_prompts", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for lo, hi in (("user_min", "user_max"), ("answer_min", "answer_max")):
            if not 0 <= getattr(self, lo) <= getattr(self, hi):
                raise ValueError(f"need 0 <= {lo} <= {hi}, got {getattr(self, lo)}, {getattr(self, hi)}")
        if self.system_tokens < 0:
            raise ValueError(f"system_tokens must be >= 0, got {self.system_tokens}")

    def as_dict(self) -> Dict[str, int]:
        return dataclasses.asdict(self)


def small(seed: int = 0) -> ChatParams:
    """The preset for tests: 8 conversations of 3 turns (24 requests, about 86K prompt tokens)."""
    return ChatParams(seed=seed, conversations=8, turns=3)


def _stream(params: ChatParams, *name: object) -> random.Random:
    label = "/".join(str(part) for part in ("flexkv-chat", params.seed) + name)
    return random.Random(int.from_bytes(hashlib.sha256(label.encode("ascii")).digest()[:8], "big"))


def _tokens(rng: random.Random, count: int, vocab: int) -> List[int]:
    return rng.choices(range(vocab), k=count)


def generate(params: ChatParams) -> Iterator[dict]:
    """The requests in replay order: ``{"id", "conv", "turn", "prompt", "output"}`` each."""
    systems = [_tokens(_stream(params, "system", s), params.system_tokens, params.vocab_size)
               for s in range(params.system_prompts)]
    rngs = [_stream(params, "conversation", c) for c in range(params.conversations)]
    context = [list(systems[rng.randrange(params.system_prompts)]) for rng in rngs]
    for turn in range(params.turns):
        order = list(range(params.conversations))
        _stream(params, "round", turn).shuffle(order)
        for c in order:
            rng = rngs[c]
            user = _tokens(rng, rng.randint(params.user_min, params.user_max), params.vocab_size)
            answer = _tokens(rng, rng.randint(params.answer_min, params.answer_max), params.vocab_size)
            prompt = context[c] + user
            yield {"id": f"c{c}-t{turn}", "conv": c, "turn": turn, "prompt": prompt, "output": answer}
            context[c] = prompt + answer
