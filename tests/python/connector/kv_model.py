"""The fake model's arithmetic: KV and sampled tokens as pure functions of the token prefix.

Token position ``p`` of a sequence gets a 64-bit seed chained over ``tokens[:p+1]``; the KV
written for that position in layer ``l`` of TP rank ``r`` is a vector derived from
(seed, l, r). So a block's content is a function of the prefix up to its last token, identical
for any request with that prefix, and different the moment one earlier token differs - which is
what makes a loaded block checkable byte by byte. Values are small integers (exact in fp16,
bf16 and fp32); the poison value 0.5 is never produced, so an unwritten slot never matches.
"""

from __future__ import annotations

from typing import Sequence

import torch

_MASK = (1 << 64) - 1
POISON = 0.5
VOCAB = 50_000


def _mix(h: int, x: int) -> int:
    """splitmix64 finaliser over (h, x): a well-spread 64-bit chain step."""
    z = (h ^ ((x + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & _MASK)) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def extend_seeds(seeds: list[int], tokens: Sequence[int], upto: int) -> list[int]:
    """Grows ``seeds`` (seed of each prefix ``tokens[:p+1]``) to cover ``upto`` positions."""
    h = seeds[-1] if seeds else 0x243F6A8885A308D3
    for p in range(len(seeds), upto):
        h = _mix(h, int(tokens[p]))
        seeds.append(h)
    return seeds


def prefix_seeds(tokens: Sequence[int]) -> list[int]:
    return extend_seeds([], tokens, len(tokens))


def next_token(seed_of_last: int) -> int:
    """Greedy sampling of the fake model: the next token depends only on the prefix."""
    return 10 + (_mix(seed_of_last, 0x5A) % VOCAB)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def kv_values(seeds: Sequence[int], layer: int, rank: int, slot_shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """KV of positions with these seeds: a tensor (len(seeds), *slot_shape) of integers in [-127, 127]."""
    salt = _mix(layer + 1, rank + 1)
    s = torch.tensor([_signed(_mix(x, salt)) for x in seeds], dtype=torch.int64)
    n = 1
    for d in slot_shape:
        n *= d
    idx = torch.arange(1, n + 1, dtype=torch.int64)
    # Integer hashing in int64 (wrap-around is deterministic on every platform torch runs on).
    x = s[:, None] + idx[None, :] * 0x2545F4914F6CDD1D
    x = x ^ (x >> 29)
    x = x * 0x5851F42D4C957F2D
    x = x ^ (x >> 32)
    vals = torch.remainder(x, 255) - 127
    return vals.to(dtype).reshape(len(seeds), *slot_shape)
