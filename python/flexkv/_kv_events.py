"""KV events of an engine (blocks stored in or removed from a tier, resets), each block named by
the hash its caller gave for it (vLLM's ``request.block_hashes``): what the vLLM connector turns
into vLLM's BlockStored / BlockRemoved / AllBlocksCleared. Off until :meth:`enable_kv_events`.

The engine keeps a caller's hash per block as long as it keeps the block, so an eviction long
after the save still names the block as vLLM did; blocks it never got a hash for (restored from
SSD, saved before events were on) are counted (``kv_events_unhashed``), not reported. Events
wait in a ring of the capacity given; when nobody takes them in time the oldest are dropped
(``kv_events_dropped``).
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import _native
from ._args import COUNT32, integer
from ._errors import InvalidArgumentError

# The tier of an event (flexkv.h FLEXKV_TIER_*), as the metrics' tier label names it.
TIERS = ("cpu", "ssd", "remote")
_KINDS = {_native.KV_EVENT_STORED: "stored", _native.KV_EVENT_REMOVED: "removed", _native.KV_EVENT_CLEARED: "cleared"}
MAX_CAPACITY = 1 << 20


@dataclass(frozen=True)
class KvEventRecord:
    """One event: ``kind`` is "stored", "removed" or "cleared" (then ``tier`` and the hashes are None)."""

    kind: str
    tier: Optional[str]
    block_hash: Optional[bytes]
    parent_hash: Optional[bytes]  # a stored block's parent, when the engine knows its hash


class KvEventsMixin:
    """KVManager's KV-event calls (it provides ``_lib`` and ``_h()``)."""

    _events_buf = None

    def enable_kv_events(self, capacity: int = 16384) -> None:
        """Starts recording events, keeping at most ``capacity`` not taken yet."""
        integer("capacity", capacity, (1, MAX_CAPACITY))
        _native.check(self._lib.flexkv_kv_events_enable(self._h(), capacity))
        self._events_buf = (_native.KvEvent * 256)()

    def set_block_hashes(self, request_id: str, first_block: int, hashes: Sequence[bytes]) -> None:
        """The hashes of blocks ``first_block``, ``first_block + 1``, ... of a request the engine
        knows (it saw a lookup or a finish of it), each of the same length, 1 to 32 bytes."""
        integer("first_block", first_block, COUNT32)
        if not hashes:
            return
        width = len(hashes[0])
        if not all(isinstance(h, (bytes, bytearray)) and len(h) == width for h in hashes):
            raise InvalidArgumentError("block hashes must be bytes, all of one length")
        rid = request_id.encode("utf-8")
        _native.check(self._lib.flexkv_set_block_hashes(self._h(), rid, len(rid), first_block, b"".join(hashes),
                                                        width, len(hashes)))

    def take_kv_events(self) -> List[KvEventRecord]:
        """Every event not taken yet, oldest first (empty when events are off)."""
        buf = self._events_buf
        if buf is None:
            return []
        out: List[KvEventRecord] = []
        count = c_size_t()
        while True:
            _native.check(self._lib.flexkv_kv_events_take(self._h(), buf, len(buf), byref(count)))
            for e in buf[: count.value]:
                out.append(_record(e))
            if count.value < len(buf):
                return out


def _record(e: "_native.KvEvent") -> KvEventRecord:
    kind = _KINDS.get(e.kind, "unknown")
    if kind == "cleared":
        return KvEventRecord(kind, None, None, None)
    tier = TIERS[e.medium] if e.medium < len(TIERS) else str(e.medium)
    block = ctypes.string_at(ctypes.addressof(e) + KvEventOffsets.HASH, e.hash_len)
    parent = ctypes.string_at(ctypes.addressof(e) + KvEventOffsets.PARENT, e.parent_len) if e.parent_len else None
    return KvEventRecord(kind, tier, block, parent)


class KvEventOffsets:
    HASH = _native.KvEvent.hash.offset
    PARENT = _native.KvEvent.parent.offset
