"""Traces for ``flexkv plan``, read as a stream of chunks (memory bounded by the chunk, not the
trace), with the standard library only:

* ``mooncake``: the public Mooncake/FAST'25 format, one JSON object per line
  ``{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [...]}``, each hash id
  standing for a block of ``block_tokens`` (512) tokens. The engine turns hash id h into the run
  of distinct token ids ``h * block_tokens + k`` (k = 0 ..), so requests sharing leading hash ids
  share token prefixes exactly; the prompt is cut to ``input_length``. Output tokens are ids no
  prompt holds (distinct per request): the engine saves them, but the trace names nothing that
  could hit them. Only hash ids cross to the library (flexkv_plan_replay_mooncake).
* ``tokens``: JSON lines with ``prompt`` (token ids), optional ``output`` and optional
  ``timestamp`` (ms); header lines (``trace_version``, as flexkv.workload writes) are skipped.
* the project's chat generator (flexkv.workload.chat), without a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from array import array
from typing import Iterable, Iterator, List, Optional

from .._errors import UsageError

CHUNK_TOKENS = 1 << 23  # tokens per replay call (64 MiB of int64 for token traces)
FORMATS = ("auto", "mooncake", "tokens")


@dataclasses.dataclass
class Chunk:
    """Consecutive requests of a trace, ready for one replay call per planner."""

    prompt_lengths: array
    total_lengths: array
    timestamps_ms: List[float]
    progress: float  # fraction of the trace read so far (0..1), for the progress line
    tokens: Optional[array] = None  # token traces: every request's tokens, back to back
    hash_ids: Optional[array] = None  # Mooncake traces: every request's hash ids, back to back
    hash_counts: Optional[array] = None
    output_lengths: Optional[array] = None
    block_tokens: int = 0
    first_output_id: int = 0

    def replay(self, planner) -> None:
        if self.tokens is not None:
            planner.replay(self.tokens, self.prompt_lengths, self.total_lengths)
            return
        planner.replay_mooncake(self.hash_ids, self.hash_counts, self.prompt_lengths, self.output_lengths,
                                self.block_tokens, self.first_output_id)


def detect(path: str) -> str:
    """``mooncake`` or ``tokens`` from the first request line of ``path``."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UsageError(f"{path}:{n}: not JSON lines") from None
            if isinstance(obj, dict) and "hash_ids" in obj:
                return "mooncake"
            if isinstance(obj, dict) and "prompt" in obj:
                return "tokens"
            if isinstance(obj, dict) and "trace_version" in obj:
                continue
            raise UsageError(f"{path}:{n}: neither a Mooncake request (hash_ids) nor a token request (prompt)")
    raise UsageError(f"{path}: no request in the file")


def _lines(path: str) -> Iterator[tuple]:
    """(line number, object, fraction of the file read) for each request line."""
    size = max(os.path.getsize(path), 1)
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UsageError(f"{path}:{n}: not valid JSON") from None
            if not isinstance(obj, dict):
                raise UsageError(f"{path}:{n}: expected a JSON object")
            if "trace_version" in obj and "prompt" not in obj:
                continue
            yield n, obj, f.tell() / size


def _int64s(values, where: str) -> array:
    try:
        return array("q", values)
    except (TypeError, OverflowError):
        raise UsageError(f"{where}: expected a list of integers (int64)") from None


def mooncake(path: str, block_tokens: int = 512, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    if block_tokens < 1:
        raise UsageError(f"--mooncake-block-tokens must be >= 1, got {block_tokens}")
    hashes, counts, prompt, total, outs, stamps = array("q"), array("q"), array("q"), array("q"), array("q"), []
    size, outputs, first_output = 0, 0, 0
    for n, obj, progress in _lines(path):
        try:
            ids = obj["hash_ids"]
            length, out_len = int(obj["input_length"]), int(obj.get("output_length", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{path}:{n}: a Mooncake request needs hash_ids and input_length ({e})") from None
        row = _int64s(ids, f"{path}:{n}: hash_ids")
        if length > len(row) * block_tokens or length < 0 or out_len < 0 or (row and min(row) < 0):
            raise UsageError(f"{path}:{n}: input_length {length} does not fit {len(row)} hash ids of {block_tokens} "
                             "tokens (is --mooncake-block-tokens right?), or a length or hash id is negative")
        hashes.extend(row)
        counts.append(len(row))
        prompt.append(length)
        total.append(length + out_len)
        outs.append(out_len)
        if "timestamp" in obj:
            stamps.append(float(obj["timestamp"]))
        outputs += out_len
        size += length + out_len
        if size >= chunk_tokens:
            yield Chunk(prompt, total, stamps, progress, hash_ids=hashes, hash_counts=counts, output_lengths=outs,
                        block_tokens=block_tokens, first_output_id=first_output)
            hashes, counts, prompt, total, outs, stamps = array("q"), array("q"), array("q"), array("q"), array("q"), []
            size, first_output = 0, outputs
    yield Chunk(prompt, total, stamps, 1.0, hash_ids=hashes, hash_counts=counts, output_lengths=outs,
                block_tokens=block_tokens, first_output_id=first_output)


class _Packer:
    """Collects token requests into chunks of about ``chunk_tokens`` tokens."""

    def __init__(self, chunk_tokens: int) -> None:
        self.chunk_tokens = chunk_tokens
        self._reset()

    def _reset(self) -> None:
        self.tokens, self.prompt, self.total, self.stamps = array("q"), array("q"), array("q"), []

    def add(self, prompt, output, stamp: Optional[float], where: str) -> None:
        before = len(self.tokens)
        try:
            self.tokens.extend(prompt)
            n_prompt = len(self.tokens) - before
            self.tokens.extend(output)
        except (TypeError, OverflowError):
            raise UsageError(f"{where}: prompt and output must be lists of integers (int64)") from None
        self.prompt.append(n_prompt)
        self.total.append(len(self.tokens) - before)
        if stamp is not None:
            self.stamps.append(float(stamp))

    def full(self) -> bool:
        return len(self.tokens) >= self.chunk_tokens

    def take(self, progress: float) -> Chunk:
        c = Chunk(self.prompt, self.total, self.stamps, progress, tokens=self.tokens)
        self._reset()
        return c


def tokens(path: str, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    pack = _Packer(chunk_tokens)
    progress = 0.0
    for n, obj, progress in _lines(path):
        if not isinstance(obj.get("prompt"), list):
            raise UsageError(f"{path}:{n}: a token request needs prompt (a list of token ids)")
        pack.add(obj["prompt"], obj.get("output") or [], obj.get("timestamp"), f"{path}:{n}")
        if pack.full():
            yield pack.take(progress)
    yield pack.take(1.0)


def generated(requests: Iterable[dict], count: int, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    """Chunks of generated requests (dicts with prompt and output), ``count`` of them."""
    pack = _Packer(chunk_tokens)
    for i, r in enumerate(requests, 1):
        pack.add(r["prompt"], r["output"], r.get("timestamp"), f"generated request {i}")
        if pack.full():
            yield pack.take(i / max(count, 1))
    yield pack.take(1.0)
