"""The Pythonic API over the engine: :class:`KVManager` (usable without vLLM)."""

from __future__ import annotations

import ctypes
import json
import logging
import struct
import threading
import time
from ctypes import byref, c_int32, c_size_t, c_uint64
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Set

from . import _native
from ._args import COUNT32, INT32, INT64, UINT64, integer
from ._buffers import as_c_array, seq_len
from ._errors import BufferTooSmallError, InvalidArgumentError
from ._handle import Handle
from ._kv_events import KvEventsMixin
from .config import load_config, normalize, to_json
from .metrics import _engines as _metric_engines
from .metrics import exporter as _exporter

_RECORD = struct.Struct("<BI")
RECVING, SENDING = 1, 2


@dataclass
class KVLayer:
    """One registered layer (``flexkv_layer_t``): block b's first span is at
    ``base + b*block_stride``, the V span ``kv_stride`` bytes later when ``num_kv == 2``."""

    base: int
    block_stride: int
    span_bytes: int
    kv_stride: int = 0
    num_kv: int = 1


@dataclass
class FinishedTasks:
    """What one query returned: request ids whose loads / saves ended, and failed block ids."""

    recving: Set[str] = field(default_factory=set)
    sending: Set[str] = field(default_factory=set)
    failed_blocks: Set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.recving or self.sending or self.failed_blocks)


def _id(request_id: str) -> bytes:
    return request_id.encode("utf-8")


def _layers(layers: Sequence[KVLayer]) -> "ctypes.Array":
    """The layers as ``flexkv_layer_t`` values, each field checked against its C type first."""
    arr = (_native.Layer * len(layers))()
    for i, l in enumerate(layers):
        arr[i] = _native.Layer(integer(f"layer {i}'s base", l.base, UINT64),
                               integer(f"layer {i}'s block_stride", l.block_stride, INT64),
                               integer(f"layer {i}'s kv_stride", l.kv_stride, INT64),
                               integer(f"layer {i}'s span_bytes", l.span_bytes, INT64),
                               integer(f"layer {i}'s num_kv", l.num_kv, INT32), 0)
    return arr


class KVManager(Handle, KvEventsMixin):
    """A FlexKv engine: CPU tier, block index and copy threads in this process.

    ``config`` is a dict of configuration keys (see :mod:`flexkv.config`); when None it is read
    from ``FLEXKV_CONFIG_PATH`` or the ``FLEXKV_*`` environment variables. ``overrides`` win.
    The methods mirror vLLM's connector calls; :meth:`put` and :meth:`get` combine them for
    direct use.
    """

    def __init__(self, config: Optional[Mapping[str, Any]] = None, **overrides: Any) -> None:
        cfg = normalize({**config, **overrides}) if config is not None else load_config(overrides)
        self.config: Dict[str, Any] = cfg
        self.tokens_per_block: int = cfg.get("tokens_per_block", 16)
        lib = _native.lib()
        raw = to_json(cfg)
        h = c_uint64()
        _native.check(lib.flexkv_engine_create(raw, len(raw), byref(h)))
        self._lib = lib
        self._adopt(h.value, lib.flexkv_engine_destroy)
        for w in self.stats().get("warnings", ()):
            logging.getLogger("flexkv").warning("FlexKv: %s", w)
        self._sent: Dict[str, int] = {}  # tokens already handed to the engine per request
        self._query_lock = threading.Lock()  # guards the reusable query buffers
        self._entries = (ctypes.c_uint8 * 65536)()
        self._failed = (c_int32 * 4096)()
        self._metrics_count = c_size_t()
        # Scrapes of the process's /metrics read this engine until it is closed.
        _metric_engines.attach(self)
        _exporter.engine_created(cfg)

    def close(self) -> None:
        """Releases the engine (and leaves the metrics endpoint); idempotent."""
        _metric_engines.detach(self)
        super().close()

    # ---- registration -------------------------------------------------------------------

    def register_kv_caches(self, layers: Sequence[KVLayer], num_blocks: int, cuda_device: Optional[int] = None,
                           pid: Optional[int] = None) -> None:
        """Registers the KV cache that blocks are copied to and from: host memory of this process,
        GPU memory of CUDA device ``cuda_device`` (layer bases are device pointers), or host
        memory of process ``pid`` (reached with process_vm_readv/writev)."""
        arr = _layers(layers)
        num_blocks = integer("num_blocks", num_blocks)
        if pid is not None:
            pid = integer("pid", pid)
            _native.check(self._lib.flexkv_register_process_kv_caches(self._h(), pid, arr, len(layers), num_blocks))
        elif cuda_device is None:
            _native.check(self._lib.flexkv_register_kv_caches(self._h(), arr, len(layers), num_blocks))
        else:
            cuda_device = integer("cuda_device", cuda_device)
            _native.check(self._lib.flexkv_register_cuda_kv_caches(self._h(), arr, len(layers), num_blocks, cuda_device))

    def register_rank(self, rank: int, world_size: int, pid: int, layers: Sequence[KVLayer], num_blocks: int,
                      cuda_ipc: Optional[Sequence[Any]] = None) -> bool:
        """Registers one tensor-parallel worker's shard: host memory of process ``pid``, or with
        ``cuda_ipc`` (one :class:`flexkv.cuda_ipc.CudaIpcHandle` per layer) the worker's GPU
        memory. Returns True once every rank is registered and the cache is usable."""
        arr = _layers(layers)
        rank, world_size = integer("rank", rank), integer("world_size", world_size)
        pid, num_blocks = integer("pid", pid), integer("num_blocks", num_blocks)
        out = c_int32()
        if cuda_ipc is None:
            _native.check(self._lib.flexkv_register_rank_kv_caches(self._h(), rank, world_size, pid, arr, len(layers),
                                                                  num_blocks, byref(out)))
        else:
            from .cuda_ipc import to_native

            if len(cuda_ipc) != len(layers):
                raise InvalidArgumentError(f"{len(cuda_ipc)} CUDA IPC handles for {len(layers)} layers")
            _native.check(self._lib.flexkv_register_rank_cuda_kv_caches(
                self._h(), rank, world_size, to_native(cuda_ipc), arr, len(layers), num_blocks, byref(out)))
        return bool(out.value)

    def deregister_rank(self, rank: int) -> None:
        """A worker exited: its rank is missing (nothing is offered or loaded) until it registers again."""
        _native.check(self._lib.flexkv_deregister_rank(self._h(), integer("rank", rank)))

    # ---- vLLM's scheduler calls ---------------------------------------------------------

    def get_num_new_matched_tokens(self, request_id: str, token_ids: Any, num_computed_tokens: int = 0,
                                   namespace: Optional[str] = None) -> Optional[int]:
        """Tokens beyond ``num_computed_tokens`` that can be loaded now (pins them), or None
        while the remote tier is being asked about the blocks after the local hit: ask again
        later (the call never waits on the remote store).

        A request asked about again with no new tokens costs no conversion or hashing.
        """
        num_computed_tokens = integer("num_computed_tokens", num_computed_tokens)
        rid = _id(request_id)
        out = c_int32()
        keep, addr, n = self._new_tokens(rid, self._sent.get(request_id, -1), token_ids)
        ns = namespace.encode("utf-8") if namespace else None
        _native.check(self._lib.flexkv_get_num_new_matched_tokens(
            self._h(), rid, len(rid), addr, n, num_computed_tokens, ns, len(ns) if ns else 0, byref(out)))
        self._sent[request_id] = n  # the engine knows all n tokens now, however they were sent
        del keep
        return None if out.value == _native.MATCH_PENDING else out.value

    def _new_tokens(self, rid: bytes, sent: int, token_ids: Any):
        """(keepalive, address, count) of the tokens to pass with a call: nothing when the engine
        has them all; only their new end (through flexkv_extend_tokens, then nothing) when it
        has most of them, since converting a long Python list is the dearest part of a call;
        else all of them."""
        n = seq_len(token_ids)
        if sent >= n:
            return None, None, n
        if sent > 0:
            first = sent // self.tokens_per_block * self.tokens_per_block
            keep, addr, count = as_c_array(token_ids[first:n], 8, "token_ids")
            if self._lib.flexkv_extend_tokens(self._h(), rid, len(rid), addr or None, count, first) == 0:
                return None, None, n
            # The engine forgot the request (or refused): send everything, it will say why.
        keep, addr, n = as_c_array(token_ids, 8, "token_ids")
        return keep, addr, n

    def match(self, request_id: str, token_ids: Any, num_computed_tokens: int = 0,
              namespace: Optional[str] = None) -> int:
        """:meth:`get_num_new_matched_tokens` for direct use: while the remote tier is being
        asked it polls again (the engine stops waiting after ``remote_lookup_budget_ms``)."""
        while True:
            n = self.get_num_new_matched_tokens(request_id, token_ids, num_computed_tokens, namespace)
            if n is not None:
                return n
            time.sleep(0.0005)

    def update_state_after_alloc(self, request_id: str, block_ids: Any, num_external_tokens: int) -> None:
        """Plans the load of the matched blocks into ``block_ids[num_computed/bs:]``."""
        num_external_tokens = integer("num_external_tokens", num_external_tokens)
        rid = _id(request_id)
        keep, addr, n = as_c_array(block_ids, 4, "block_ids")
        _native.check(self._lib.flexkv_update_state_after_alloc(self._h(), rid, len(rid), addr or None, n,
                                                                num_external_tokens))
        del keep

    def request_finished(self, request_id: str, token_ids: Any = None, block_ids: Any = (), save: bool = True,
                         namespace: Optional[str] = None) -> bool:
        """Plans the save of the request's full blocks (all tokens but the last); returns
        whether ``block_ids`` must stay untouched until the request is reported as sending."""
        rid = _id(request_id)
        sent = self._sent.pop(request_id, -1)
        out = c_int32()
        if token_ids is None:
            keep_t, taddr, tn = None, None, max(sent, 0)
        else:
            keep_t, taddr, tn = self._new_tokens(rid, sent, token_ids)
        keep_b, baddr, bn = as_c_array(block_ids, 4, "block_ids")
        ns = namespace.encode("utf-8") if namespace else None
        _native.check(self._lib.flexkv_request_finished(
            self._h(), rid, len(rid), taddr, tn, baddr or None, bn, 1 if save else 0, ns, len(ns) if ns else 0,
            byref(out)))
        del keep_t, keep_b
        return bool(out.value)

    def cancel(self, request_id: str) -> None:
        """Preemption: drops the request's match and cancels its transfers (returns when none runs)."""
        rid = _id(request_id)
        _native.check(self._lib.flexkv_cancel_request(self._h(), rid, len(rid)))

    def launch_tasks(self) -> int:
        """Launches every planned load and save; returns how many."""
        out = c_int32()
        _native.check(self._lib.flexkv_launch_tasks(self._h(), byref(out)))
        return out.value

    def query_finished(self) -> FinishedTasks:
        """Requests whose loads/saves ended since the last query (each reported once)."""
        blen, flen = c_size_t(), c_size_t()
        with self._query_lock:
            return self._query_locked(blen, flen)

    def _query_locked(self, blen: c_size_t, flen: c_size_t) -> FinishedTasks:
        while True:
            rc = self._lib.flexkv_query_finished_task(self._h(), self._entries, len(self._entries), byref(blen),
                                                     self._failed, len(self._failed), byref(flen))
            if rc != BufferTooSmallError.status:
                _native.check(rc)
                break
            if blen.value > len(self._entries):
                self._entries = (ctypes.c_uint8 * (blen.value * 2))()
            if flen.value > len(self._failed):
                self._failed = (c_int32 * (flen.value * 2))()
        out = FinishedTasks()
        if blen.value:
            data = bytes(memoryview(self._entries)[: blen.value])
            pos = 0
            while pos < len(data):
                kind, length = _RECORD.unpack_from(data, pos)
                rid = data[pos + 5: pos + 5 + length].decode("utf-8")
                (out.recving if kind == RECVING else out.sending).add(rid)
                pos += 5 + length
        if flen.value:
            out.failed_blocks.update(self._failed[: flen.value])
        return out

    def reset(self) -> None:
        """Drops every cached block (pending transfers are cancelled and still reported)."""
        _native.check(self._lib.flexkv_reset(self._h()))

    def stats(self) -> Dict[str, Any]:
        """The engine's counters."""
        needed = c_size_t()
        buf = ctypes.create_string_buffer(2048)
        rc = self._lib.flexkv_stats(self._h(), buf, len(buf), byref(needed))
        if rc == BufferTooSmallError.status:
            buf = ctypes.create_string_buffer(needed.value)
            rc = self._lib.flexkv_stats(self._h(), buf, len(buf), byref(needed))
        _native.check(rc)
        return json.loads(buf.value.decode("utf-8"))

    def read_metrics(self, values: "ctypes.Array") -> int:
        """Fills ``values`` (a ``ctypes.c_int64`` array) with the metrics snapshot in
        :func:`metrics_names` order, as many as fit; returns how many there are. Cheap enough
        for every scheduler step (no JSON, no allocation in the engine)."""
        # One count for every call: it is read every step (≤ 5 µs in benchmarks/scheduler.py), and
        # concurrent readers (a scrape) write the same number into it.
        count = self._metrics_count
        rc = self._lib.flexkv_metrics_read(self._h(), values, len(values), byref(count))
        if rc:
            _native.check(rc)
        return count.value

    def wait(self, timeout: float = 1.0) -> bool:
        """Blocks until some transfer ended (or the timeout); True if a query would return something."""
        out = c_int32()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout * 1000 <= COUNT32[1]:
            raise InvalidArgumentError(f"timeout must be a number of seconds from 0 to {COUNT32[1] // 1000}, "
                                       f"got {timeout!r}")
        _native.check(self._lib.flexkv_wait(self._h(), int(timeout * 1000), byref(out)))
        return bool(out.value)

    def shutdown(self) -> None:
        """Stops the engine (cancels transfers, joins threads, frees the CPU pool)."""
        if not self.closed:
            _native.check(self._lib.flexkv_engine_shutdown(self._h()))

    # ---- direct use ---------------------------------------------------------------------

    def put(self, request_id: str, token_ids: Any, block_ids: Any, timeout: float = 30.0) -> bool:
        """Saves the full blocks of ``token_ids`` (all but the last token) from ``block_ids`` and
        waits until the save ended. Returns whether anything was saved."""
        hold = self.request_finished(request_id, token_ids, block_ids, save=True)
        if not hold:
            return False
        self.launch_tasks()
        self.wait_finished(request_id, "sending", timeout)
        return True

    def get(self, request_id: str, token_ids: Any, block_ids: Any, num_computed_tokens: int = 0,
            timeout: float = 30.0) -> Set[int]:
        """Loads the cached prefix of ``token_ids`` into ``block_ids`` and waits. Returns the set of
        block ids that failed to load (empty on success); see :meth:`get_num_new_matched_tokens`
        for how many tokens were loaded."""
        n = self.match(request_id, token_ids, num_computed_tokens)
        self.update_state_after_alloc(request_id, block_ids, n)
        failed: Set[int] = set()
        if n:
            self.launch_tasks()
            failed = self.wait_finished(request_id, "recving", timeout)
        self.request_finished(request_id, None, (), save=False)
        return failed

    def wait_finished(self, request_id: str, kind: str = "recving", timeout: float = 30.0) -> Set[int]:
        """Polls until ``request_id`` is reported as ``"recving"`` (load ended) or ``"sending"``
        (save ended); returns the failed block ids seen meanwhile. Other requests' reports seen
        while waiting are consumed, so use it only when nothing else polls this manager."""
        if kind not in ("recving", "sending"):
            raise ValueError(f"kind must be 'recving' or 'sending', got {kind!r}")
        deadline = time.monotonic() + timeout
        failed: Set[int] = set()
        while True:
            got = self.query_finished()
            failed |= got.failed_blocks
            if request_id in (got.recving if kind == "recving" else got.sending):
                return failed
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"request {request_id!r} did not finish within {timeout} s")
            self.wait(min(left, 0.1))


_metric_names: Optional[list] = None


def metrics_names() -> list:
    """The metrics snapshot's layout: one ``{"name", "kind", "help"}`` per position ("counter"
    only grows; "gauge" is a level). The same for every engine of the loaded library."""
    global _metric_names
    if _metric_names is None:
        lib = _native.lib()
        needed = c_size_t()
        buf = ctypes.create_string_buffer(8192)
        rc = lib.flexkv_metrics_names(buf, len(buf), byref(needed))
        if rc == BufferTooSmallError.status:
            buf = ctypes.create_string_buffer(needed.value)
            rc = lib.flexkv_metrics_names(buf, len(buf), byref(needed))
        _native.check(rc)
        _metric_names = json.loads(buf.value.decode("utf-8"))
    return _metric_names


class PrefixIndex(Handle):
    """The control plane alone (no bytes): how much of a token sequence is cached, with LRU
    eviction over ``capacity_blocks`` blocks. Sequences are named by integer ids; a match
    followed by an insert of the same (longer) sequence hashes each block once."""

    def __init__(self, tokens_per_block: int = 16, capacity_blocks: int = 1 << 30) -> None:
        lib = _native.lib()
        h = c_uint64()
        tokens_per_block = integer("tokens_per_block", tokens_per_block)
        capacity_blocks = integer("capacity_blocks", capacity_blocks, INT64)
        _native.check(lib.flexkv_index_create(tokens_per_block, capacity_blocks, byref(h)))
        self._lib = lib
        self._adopt(h.value, lib.flexkv_index_destroy)

    def match(self, sequence: int, token_ids: Any) -> int:
        """Cached leading tokens of the sequence."""
        out = c_int32()
        keep, addr, n = as_c_array(token_ids, 8, "token_ids")
        sequence = integer("sequence", sequence, INT64)
        _native.check(self._lib.flexkv_index_match(self._h(), sequence, addr or None, n, byref(out)))
        return out.value

    def insert(self, sequence: int, token_ids: Any) -> int:
        """Stores the sequence's uncached full blocks and ends it; returns blocks stored."""
        out = c_int32()
        keep, addr, n = as_c_array(token_ids, 8, "token_ids")
        sequence = integer("sequence", sequence, INT64)
        _native.check(self._lib.flexkv_index_insert(self._h(), sequence, addr or None, n, byref(out)))
        return out.value

    def info(self) -> Dict[str, int]:
        """Blocks held and blocks evicted."""
        b, e = ctypes.c_int64(), ctypes.c_int64()
        _native.check(self._lib.flexkv_index_info(self._h(), byref(b), byref(e)))
        return {"blocks": b.value, "evictions": e.value}
