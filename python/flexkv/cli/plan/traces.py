"""Traces for ``flexkv plan``, read as a stream of chunks of packed int64 tokens (memory bounded
by the chunk, not the trace):

* ``mooncake``: the public Mooncake/FAST'25 format, one JSON object per line
  ``{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [...]}``, each hash id
  standing for a block of ``block_tokens`` (512) tokens. Hash id h becomes the run of distinct
  token ids ``h * block_tokens + k`` (k = 0 ..), so requests sharing leading hash ids share token
  prefixes exactly; the prompt is cut to ``input_length``. Output tokens are ids no prompt holds
  (negative, distinct per request): the engine saves them, but the trace names nothing that
  could hit them.
* ``tokens``: JSON lines with ``prompt`` (token ids), optional ``output`` and optional
  ``timestamp`` (ms); header lines (``trace_version``, as flexkv.workload writes) are skipped.
* the project's chat generator (flexkv.workload.chat), without a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable, Iterator, List, Optional

from .._errors import UsageError

CHUNK_TOKENS = 1 << 23  # tokens per replay call: 64 MiB of int64, whatever the trace's size
FORMATS = ("auto", "mooncake", "tokens")


@dataclasses.dataclass
class Chunk:
    """Requests packed back to back: ``tokens`` (int64), per request its prompt and total length."""

    tokens: object
    prompt_lengths: object
    total_lengths: object
    timestamps_ms: List[float]
    progress: float  # fraction of the trace read so far (0..1), for the progress line


def _np():
    try:
        import numpy
    except ImportError:
        raise UsageError("flexkv plan needs numpy (apt install python3-numpy, or pip install numpy)") from None
    return numpy


def detect(path: str) -> str:
    """``mooncake`` or ``tokens`` from the first request line of ``path``."""
    with open(path, encoding="utf-8") as f:
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


class _Packer:
    """Collects requests into chunks of about CHUNK_TOKENS tokens."""

    def __init__(self, chunk_tokens: int) -> None:
        self.np = _np()
        self.chunk_tokens = chunk_tokens
        self._reset()

    def _reset(self) -> None:
        self.parts: list = []
        self.prompt: List[int] = []
        self.total: List[int] = []
        self.stamps: List[float] = []
        self.size = 0

    def add(self, prompt, output, stamp: Optional[float]) -> None:
        self.parts.append(prompt)
        if len(output):
            self.parts.append(output)
        self.prompt.append(len(prompt))
        self.total.append(len(prompt) + len(output))
        if stamp is not None:
            self.stamps.append(float(stamp))
        self.size += len(prompt) + len(output)

    def full(self) -> bool:
        return self.size >= self.chunk_tokens

    def take(self, progress: float) -> Chunk:
        np = self.np
        tokens = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)
        c = Chunk(np.ascontiguousarray(tokens, dtype=np.int64), np.asarray(self.prompt, dtype=np.int64),
                  np.asarray(self.total, dtype=np.int64), self.stamps, progress)
        self._reset()
        return c


def mooncake(path: str, block_tokens: int = 512, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    if block_tokens < 1:
        raise UsageError(f"--mooncake-block-tokens must be >= 1, got {block_tokens}")
    pack = _Packer(chunk_tokens)
    np = pack.np
    offsets = np.arange(block_tokens, dtype=np.int64)
    outputs = 0  # output token ids handed out so far: each request's are new
    progress = 0.0
    for n, obj, progress in _lines(path):
        try:
            hashes = np.asarray(obj["hash_ids"], dtype=np.int64)
            length, out_len = int(obj["input_length"]), int(obj.get("output_length", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{path}:{n}: a Mooncake request needs hash_ids and input_length ({e})") from None
        if length > len(hashes) * block_tokens or length < 0 or out_len < 0 or (len(hashes) and hashes.min() < 0):
            raise UsageError(f"{path}:{n}: input_length {length} does not fit {len(hashes)} hash ids of {block_tokens} "
                             "tokens (is --mooncake-block-tokens right?), or a length or hash id is negative")
        prompt = (hashes[:, None] * block_tokens + offsets).reshape(-1)[:length]
        output = -1 - outputs - np.arange(out_len, dtype=np.int64)
        outputs += out_len
        pack.add(prompt, output, obj.get("timestamp"))
        if pack.full():
            yield pack.take(progress)
    yield pack.take(1.0)


def tokens(path: str, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    pack = _Packer(chunk_tokens)
    np = pack.np
    for n, obj, progress in _lines(path):
        try:
            prompt = np.asarray(obj["prompt"], dtype=np.int64).reshape(-1)
            output = np.asarray(obj.get("output") or [], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{path}:{n}: a token request needs prompt (a list of token ids) ({e})") from None
        pack.add(prompt, output, obj.get("timestamp"))
        if pack.full():
            yield pack.take(progress)
    yield pack.take(1.0)


def generated(requests: Iterable[dict], count: int, chunk_tokens: int = CHUNK_TOKENS) -> Iterator[Chunk]:
    """Chunks of generated requests (dicts with prompt and output), ``count`` of them."""
    pack = _Packer(chunk_tokens)
    np = pack.np
    for i, r in enumerate(requests, 1):
        pack.add(np.asarray(r["prompt"], dtype=np.int64), np.asarray(r["output"], dtype=np.int64), r.get("timestamp"))
        if pack.full():
            yield pack.take(i / max(count, 1))
    yield pack.take(1.0)
