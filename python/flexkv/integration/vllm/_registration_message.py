"""The registration message, read as untrusted input: one JSON line from a process on this
machine that the scheduler has not vouched for yet. Every field is checked for type and range
before anything reaches the engine (the C ABI's int32 and int64 would silently wrap a Python
int, and the engine trusts sizes it is given), and each refusal names the field in plain words.

Layout of a line (protocol 1)::

    {"protocol": 1, "rank": r, "world_size": w, "pid": p, "num_blocks": n, "memory": "host"|"cuda",
     "layers": [[base, block_stride, span_bytes, kv_stride, num_kv], ...],
     "cuda_ipc": [[handle_hex, offset, pci_bus_id], ...]}      # memory "cuda" only, one per layer
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any, List, Optional

from ..._errors import InvalidArgumentError
from ...cuda_ipc import CudaIpcHandle
from ...manager import KVLayer

PROTOCOL = 1
MAX_WORLD_SIZE = 1024  # ranks of one scheduler (TP x PP); far above any real deployment
MAX_LAYERS = 1024      # distinct KV cache tensors of one worker
MAX_PID = 1 << 22      # PID_MAX_LIMIT on 64-bit Linux
MAX_DIGITS = 40        # no valid field needs more; longer numbers are refused before int() runs
INT32_MAX = 2 ** 31 - 1
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1
UINT64_MAX = 2 ** 64 - 1
LAYER_FIELDS = "base, block_stride, span_bytes, kv_stride, num_kv"
FIELDS = {"protocol", "rank", "world_size", "pid", "num_blocks", "memory", "layers", "cuda_ipc"}


def line_limit(num_layers: int) -> int:
    """The longest line a registration of ``num_layers`` layers needs (with CUDA IPC handles,
    a layer takes under 300 bytes): a longer one is refused."""
    return 4096 + 512 * num_layers


MAX_LINE = line_limit(MAX_LAYERS)  # read no further than this before the message is known


@dataclass(frozen=True)
class Registration:
    rank: int
    world_size: int
    pid: int
    num_blocks: int
    layers: List[KVLayer]
    cuda_ipc: Optional[List[CudaIpcHandle]]  # None: host memory of process ``pid``


def _refuse(what: str) -> InvalidArgumentError:
    return InvalidArgumentError(what)


def describe(v: Any) -> str:
    """A JSON value in words, shortened: refusals echo what was sent, never all of it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        s = str(v)
        return s if len(s) <= 40 else f"a {len(s)}-digit number"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        shown = v if len(v) <= 40 else v[:40] + "..."
        return f"the string {shown!r}"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return "a value of an unknown kind"


def _int_or_refuse(s: str) -> int:
    if len(s.lstrip("-")) > MAX_DIGITS:
        raise _refuse(f"the registration holds a number of more than {MAX_DIGITS} digits")
    return int(s)


def _no_constant(name: str):
    raise _refuse(f"the registration holds {name}, which is not a number")


def decode(line: bytes) -> dict:
    """The line as a JSON object, or a refusal saying why it is not one."""
    if not line.strip():
        raise _refuse("the registration is empty")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("the registration is not UTF-8 text") from None
    try:
        msg = json.loads(text, parse_int=_int_or_refuse, parse_constant=_no_constant)
    except RecursionError:
        raise _refuse("the registration is not valid JSON (it nests too deeply)") from None
    except json.JSONDecodeError as e:
        what = e.msg[:-3] if e.msg.endswith(" at") else e.msg  # "Unterminated string starting at"
        raise _refuse(f"the registration is not valid JSON ({what} at character {e.pos})") from None
    if not isinstance(msg, dict):
        raise _refuse(f"the registration must be a JSON object, got {describe(msg)}")
    return msg


def _field(msg: dict, key: str) -> Any:
    if key not in msg:
        raise _refuse(f"the registration has no {key} field")
    return msg[key]


def integer(name: str, v: Any, lo: int, hi: int) -> int:
    """``v`` if it is a JSON integer in lo..hi (true/false and 8.0 are not integers)."""
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _refuse(f"{name} must be an integer from {lo} to {hi}, got {describe(v)}")
    return v


def pid_of(msg: dict) -> int:
    """The protocol and the pid: all that is needed to check who sent the message."""
    protocol = _field(msg, "protocol")
    if isinstance(protocol, bool) or not isinstance(protocol, int) or protocol != PROTOCOL:
        raise _refuse(f"the registration speaks protocol {describe(protocol)}; this scheduler speaks protocol "
                      f"{PROTOCOL} (are the workers and the scheduler running the same FlexKv?)")
    return integer("pid", _field(msg, "pid"), 1, MAX_PID)


def rank_of(msg: Any, world_size: int) -> Optional[int]:
    """The message's rank if it is a valid one (a refusal is then recorded against it)."""
    rank = msg.get("rank") if isinstance(msg, dict) else None
    if isinstance(rank, int) and not isinstance(rank, bool) and 0 <= rank < world_size:
        return rank
    return None


def validate(msg: dict, world_size: int, line_length: int) -> Registration:
    """Checks every field of a decoded message; ``world_size`` is the scheduler's."""
    pid = pid_of(msg)
    unknown = sorted(set(msg) - FIELDS)
    if unknown:
        shown = ", ".join(k[:40] for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise _refuse(f"the registration has unknown fields: {shown}")
    world = integer("world_size", _field(msg, "world_size"), 1, MAX_WORLD_SIZE)
    rank = integer("rank", _field(msg, "rank"), 0, MAX_WORLD_SIZE - 1)
    if world != world_size:
        raise _refuse(f"rank {rank} says the world size is {world}, the scheduler {world_size}")
    if rank >= world:
        raise _refuse(f"rank {rank} is outside 0..{world - 1}")
    num_blocks = integer("num_blocks", _field(msg, "num_blocks"), 1, INT32_MAX)
    memory = msg.get("memory", "host")
    if not isinstance(memory, str) or memory not in ("host", "cuda"):
        raise _refuse(f"memory must be 'host' or 'cuda', got {describe(memory)}")
    raw_layers = _field(msg, "layers")
    if not isinstance(raw_layers, list) or not 1 <= len(raw_layers) <= MAX_LAYERS:
        got = f"{len(raw_layers)} layers" if isinstance(raw_layers, list) else describe(raw_layers)
        raise _refuse(f"layers must be an array of 1 to {MAX_LAYERS} layers, got {got}")
    if line_length > line_limit(len(raw_layers)):
        n = len(raw_layers)
        raise _refuse(f"the registration is {line_length} bytes long, more than the {line_limit(n)} bytes of one "
                      f"with {n} layer{'s' if n != 1 else ''}")
    layers = [_layer(i, v, host=memory == "host") for i, v in enumerate(raw_layers)]
    _check_sizes(layers, num_blocks, host=memory == "host")
    ipc = None
    if memory == "cuda":
        ipc = _handles(_field(msg, "cuda_ipc"), len(layers))
    elif "cuda_ipc" in msg:
        raise _refuse("cuda_ipc is only for memory 'cuda'")
    return Registration(rank, world, pid, num_blocks, layers, ipc)


def _layer(i: int, v: Any, host: bool) -> KVLayer:
    if not isinstance(v, list) or len(v) != 5:
        got = f"an array of {len(v)}" if isinstance(v, list) else describe(v)
        raise _refuse(f"layer {i} must be [{LAYER_FIELDS}], got {got}")
    # A CUDA layer's base is replaced by the mapping of its IPC handle: any uint64 will do.
    base = integer(f"layer {i}'s base", v[0], 1 if host else 0, UINT64_MAX)
    block_stride = integer(f"layer {i}'s block_stride", v[1], 0, INT64_MAX)
    span_bytes = integer(f"layer {i}'s span_bytes", v[2], 1, INT64_MAX)
    kv_stride = integer(f"layer {i}'s kv_stride", v[3], INT64_MIN, INT64_MAX)
    num_kv = v[4]
    if isinstance(num_kv, bool) or not isinstance(num_kv, int) or num_kv not in (1, 2):
        raise _refuse(f"layer {i}'s num_kv must be 1 or 2, got {describe(num_kv)}")
    return KVLayer(base, block_stride, span_bytes, kv_stride, num_kv)


def _check_sizes(layers: List[KVLayer], num_blocks: int, host: bool) -> None:
    """Sizes the engine computes in int64 must fit it: the bytes of one block over all layers,
    and each layer's extent over all blocks."""
    from ._worker import extent

    total = sum(l.span_bytes * l.num_kv for l in layers)
    if total > INT64_MAX:
        raise _refuse(f"the layers hold {total} bytes per block, more than a 64-bit size can count")
    for i, l in enumerate(layers):
        lo, size = extent(l, num_blocks)
        if size > INT64_MAX:
            raise _refuse(f"layer {i} spans {size} bytes over {num_blocks} blocks, more than a 64-bit offset "
                          "can address")
        if host and lo < 0:
            raise _refuse(f"layer {i}'s V spans start {-lo} bytes below address 0 (kv_stride {l.kv_stride})")


_HEX = set(string.hexdigits)
_BUS_ID = set(string.printable) - set(string.whitespace)


def _handles(v: Any, num_layers: int) -> List[CudaIpcHandle]:
    if not isinstance(v, list) or len(v) != num_layers:
        got = f"{len(v)} handle{'s' if len(v) != 1 else ''}" if isinstance(v, list) else describe(v)
        raise _refuse(f"cuda_ipc must be an array of one handle per layer ({num_layers}), got {got}")
    out = []
    for i, h in enumerate(v):
        shape = f"cuda_ipc {i} must be [handle (128 hex digits), offset, PCI bus id]"
        if not isinstance(h, list) or len(h) != 3:
            got = f"an array of {len(h)}" if isinstance(h, list) else describe(h)
            raise _refuse(f"{shape}, got {got}")
        handle, offset, bus = h
        if not isinstance(handle, str) or len(handle) != 128 or not set(handle) <= _HEX:
            raise _refuse(f"{shape}, got a handle that is not 128 hex digits")
        offset = integer(f"cuda_ipc {i}'s offset", offset, 0, INT64_MAX)
        if not isinstance(bus, str) or not 1 <= len(bus) <= 31 or not set(bus) <= _BUS_ID:
            raise _refuse(f"cuda_ipc {i}'s PCI bus id must be 1 to 31 printable ASCII characters, got {describe(bus)}")
        out.append(CudaIpcHandle(bytes.fromhex(handle), offset, bus))
    return out
