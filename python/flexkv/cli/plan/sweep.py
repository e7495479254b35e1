"""Runs one :class:`flexkv.tier_planner.TierPlanner` per capacity combination over a trace read
once, chunk by chunk. ctypes releases the GIL during a replay call, so the combinations of a
chunk replay in parallel on a thread per core while another thread reads the next chunk (at
most two chunks wait: memory stays bounded); each planner sees the chunks in trace order."""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional

from ...tier_planner import TierPlanner
from .traces import Chunk


@dataclasses.dataclass
class Capacity:
    """One combination: what the user asked for (GiB, None: unlimited) and the slots it gives."""

    cpu_gb: Optional[float]
    ssd_gb: Optional[float]
    cpu_blocks: int
    ssd_blocks: int
    cpu_label: str = ""
    ssd_label: str = ""


@dataclasses.dataclass
class TraceInfo:
    requests: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0
    first_ms: Optional[float] = None
    last_ms: Optional[float] = None
    timestamped: int = 0


@dataclasses.dataclass
class Outcome:
    capacity: Capacity
    stats: dict
    replay_s: float


_END = object()


def _read_ahead(chunks: Iterable[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """``chunks``, produced on a reader thread up to ``depth`` ahead; its exceptions re-raised here."""
    q: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # handed to the consumer, which raises it
            q.put(e)

    t = threading.Thread(target=read, name="flexkv-plan-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def run(capacities: List[Capacity], tokens_per_block: int, chunks: Iterable[Chunk],
        on_chunk: Optional[Callable[[TraceInfo, float], None]] = None) -> tuple:
    """Replays every chunk into every planner; returns (outcomes, trace info)."""
    planners = [TierPlanner(tokens_per_block, c.cpu_blocks, c.ssd_blocks) for c in capacities]
    seconds = [0.0] * len(planners)
    info = TraceInfo()

    def replay(i: int, chunk: Chunk) -> None:
        t0 = time.perf_counter()
        chunk.replay(planners[i])
        seconds[i] += time.perf_counter() - t0

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(len(planners), os.cpu_count() or 1))) as pool:
            for chunk in _read_ahead(chunks):
                n = len(chunk.prompt_lengths)
                if n:
                    list(pool.map(replay, range(len(planners)), [chunk] * len(planners)))
                info.requests += n
                info.prompt_tokens += sum(chunk.prompt_lengths)
                info.total_tokens += sum(chunk.total_lengths)
                if chunk.timestamps_ms:
                    info.timestamped += len(chunk.timestamps_ms)
                    lo, hi = min(chunk.timestamps_ms), max(chunk.timestamps_ms)
                    info.first_ms = lo if info.first_ms is None else min(info.first_ms, lo)
                    info.last_ms = hi if info.last_ms is None else max(info.last_ms, hi)
                if on_chunk:
                    on_chunk(info, chunk.progress)
        return [Outcome(c, p.stats(), s) for c, p, s in zip(capacities, planners, seconds)], info
    finally:
        for p in planners:
            p.close()
