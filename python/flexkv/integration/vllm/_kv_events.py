"""KV events for vLLM: what the scheduler side's ``take_events()`` returns when vLLM's
``kv_events_config.enable_kv_cache_events`` is on (off otherwise: nothing is recorded).

The engine records, as its index changes, a block becoming readable in a tier or losing its copy
there, and a reset (flexkv._kv_events). Blocks are named by vLLM's own hashes: this side hands
the engine each request's ``request.block_hashes`` (after its first lookup, and before its
finish for the blocks decoding added); the engine keeps a block's hash as long as the block, so
an eviction long after the save still names it as vLLM's prefix cache does. Events become
vLLM's ``BlockStored`` (consecutive blocks of one chain in one event, with their parent's hash,
token ids, block size, LoRA and extra keys), ``BlockRemoved`` and ``AllBlocksCleared``, the
``medium`` naming the tier: "CPU" as vLLM's offloading connector names its CPU tier, "SSD" and
"REMOTE". Hashes pass through vLLM's ``maybe_convert_block_hash`` as vLLM's own events do.

The token ids (and LoRA, extra keys) of a stored block come from the request that saved or
loaded it, kept here for the last DETAILS_KEPT blocks; a block stored later than that (a slow
remote write) is reported with no token ids and block_size 0, as vLLM's offloading connector
reports its blocks. Owned by the scheduler thread.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from ... import _errors
from . import _log

MEDIUM = {"cpu": "CPU", "ssd": "SSD", "remote": "REMOTE"}
DETAILS_KEPT = 8192  # ~1 KiB each (16 token ids as Python ints and the rest)
MAX_HASH_BYTES = 32

_Details = Tuple[tuple, Optional[int], Optional[str], Optional[tuple]]  # token ids, lora id, lora name, extra keys


def _enabled(vllm_config) -> bool:
    cfg = getattr(vllm_config, "kv_events_config", None)
    return bool(cfg is not None and getattr(cfg, "enable_kv_cache_events", False))


def _build(cls, **fields):
    """An event of vLLM's class with the fields this vLLM's class has (older ones lack lora_name, extra_keys)."""
    known = getattr(cls, "__struct_fields__", None) or tuple(getattr(cls, "__dataclass_fields__", {}) or ()) or None
    return cls(**({k: v for k, v in fields.items() if k in known} if known else fields))


class KvEventsBridge:
    def __init__(self, manager, block_size: int, types, convert: Callable[[bytes], Any],
                 extra_keys: Optional[Callable]) -> None:
        self._manager, self._block_size = manager, block_size
        self._stored, self._removed, self._cleared = types
        self._convert, self._extra_keys = convert, extra_keys
        self._sent: Dict[str, int] = {}  # request id -> hashes handed to the engine
        self._details: "OrderedDict[bytes, _Details]" = OrderedDict()  # block hash -> BlockStored's fields
        self._broken = False

    @classmethod
    def create(cls, vllm_config, manager, block_size: int, capacity: int) -> Optional["KvEventsBridge"]:
        """The bridge when vLLM asks for KV events, else None."""
        if not _enabled(vllm_config):
            return None
        try:
            from vllm.distributed.kv_events import AllBlocksCleared, BlockRemoved, BlockStored
        except ImportError as e:
            _log.logger.warning("FlexKv: vLLM's kv_events_config asks for KV events, but this vLLM has no "
                                "vllm.distributed.kv_events (%s); FlexKv reports none", e)
            return None
        try:
            from vllm.v1.core.kv_cache_utils import maybe_convert_block_hash as convert
        except ImportError:  # a vLLM whose events take the hash bytes as they are
            def convert(h):
                return h
        try:
            from vllm.v1.core.kv_cache_utils import generate_block_hash_extra_keys as extra_keys
        except ImportError:
            extra_keys = None
        manager.enable_kv_events(capacity)
        return cls(manager, block_size, (BlockStored, BlockRemoved, AllBlocksCleared), convert, extra_keys)

    # ---- hashes in -----------------------------------------------------------------------

    def send_hashes(self, request) -> None:
        """Hands the engine the hashes of the request's full blocks it does not have yet (the
        engine must know the request: after its first lookup, or before its finish)."""
        if self._broken:
            return
        rid = request.request_id
        hashes = getattr(request, "block_hashes", None) or ()
        sent = self._sent.get(rid, 0)
        if len(hashes) <= sent:
            return
        new = list(hashes[sent:])
        if len(hashes) != len(request.all_token_ids) // self._block_size:
            self._broken = True  # hashed at another granularity (a hybrid KV cache): they name no block of ours
            _log.logger.warning("FlexKv: vLLM hashes %d blocks of a %d-token request, not one per %d-token block; "
                                "FlexKv reports no KV events", len(hashes), len(request.all_token_ids),
                                self._block_size)
            return
        if not all(isinstance(h, (bytes, bytearray)) and 0 < len(h) <= MAX_HASH_BYTES for h in new):
            self._broken = True
            _log.logger.warning("FlexKv: vLLM's block hashes are not byte strings of up to %d bytes (%s); FlexKv "
                                "reports no KV events for the blocks of new requests", MAX_HASH_BYTES,
                                type(new[0]).__name__)
            return
        try:
            self._manager.set_block_hashes(rid, sent, [bytes(h) for h in new])
        except _errors.UnknownRequestError:
            return  # a request the engine never saw (finished before any lookup): nothing of it is stored
        except _errors.FlexKVError as e:
            _log.once(f"hashes:{type(e).__name__}", "could not pass block hashes for KV events: %s", e)
            return
        self._sent[rid] = len(hashes)

    def remember(self, request, first: int, end: int) -> None:
        """Keeps what BlockStored says of blocks [first, end) of the request (it saves or loads them)."""
        hashes = getattr(request, "block_hashes", None) or ()
        end = min(end, len(hashes))
        if first >= end:
            return
        lora = getattr(request, "lora_request", None)
        lora_id = getattr(lora, "adapter_id", getattr(lora, "lora_int_id", None)) if lora is not None else None
        lora_name = getattr(lora, "lora_name", getattr(lora, "name", None)) if lora is not None else None
        tokens = request.all_token_ids
        bs, mm = self._block_size, 0
        for i in range(first, end):
            extra = None
            if self._extra_keys is not None:
                try:
                    extra, mm = self._extra_keys(request, i * bs, (i + 1) * bs, mm)
                except Exception:  # a vLLM whose helper differs: the events go without extra keys
                    self._extra_keys = None
            h = bytes(hashes[i])
            self._details[h] = (tuple(tokens[i * bs:(i + 1) * bs]), lora_id, lora_name, extra)
            self._details.move_to_end(h)
        while len(self._details) > DETAILS_KEPT:
            self._details.popitem(last=False)

    def forget(self, request_id: str) -> None:
        self._sent.pop(request_id, None)

    # ---- events out ----------------------------------------------------------------------

    def take(self) -> List[Any]:
        """vLLM's events for what the engine recorded since the last call, in order."""
        try:
            records = self._manager.take_kv_events()
        except _errors.FlexKVError as e:
            _log.once(f"events:{type(e).__name__}", "could not take KV events: %s", e)
            return []
        out: List[Any] = []
        run: List[Any] = []  # consecutive records that become one event
        for r in records:
            if run and not self._joins(run, r):
                out.append(self._event(run))
                run = []
            run.append(r)
        if run:
            out.append(self._event(run))
        return out

    def _joins(self, run: list, r) -> bool:
        last = run[-1]
        if r.kind != last.kind or r.tier != last.tier or r.kind == "cleared":
            return False
        if r.kind == "removed":
            return True
        # One BlockStored is one chain of one request's kind: each block's parent is the previous one.
        return r.parent_hash == last.block_hash and self._lora(r) == self._lora(last) and \
            (r.block_hash in self._details) == (last.block_hash in self._details)

    def _lora(self, r):
        d = self._details.get(r.block_hash)
        return (d[1], d[2]) if d else None

    def _event(self, run: list):
        first = run[0]
        if first.kind == "cleared":
            return self._cleared()
        medium = MEDIUM.get(first.tier, str(first.tier).upper())
        hashes = [self._convert(r.block_hash) for r in run]
        if first.kind == "removed":
            return _build(self._removed, block_hashes=hashes, medium=medium)
        details = [self._details.get(r.block_hash) for r in run]
        known = details[0] is not None
        tokens = [t for d in details for t in d[0]] if known else []
        extra = [d[3] for d in details] if known and any(d[3] is not None for d in details) else None
        parent = self._convert(first.parent_hash) if first.parent_hash is not None else None
        return _build(self._stored, block_hashes=hashes, parent_block_hash=parent, token_ids=tokens,
                      block_size=self._block_size if known else 0, lora_id=details[0][1] if known else None,
                      medium=medium, lora_name=details[0][2] if known else None, extra_keys=extra)
