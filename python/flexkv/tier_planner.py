"""The engine's control plane over a CPU and an SSD tier, without bytes (``flexkv_plan_*``):
what a trace hits in each tier at given capacities. ``flexkv plan`` drives it; see
:class:`TierPlanner`."""

from __future__ import annotations

import ctypes
import json
from ctypes import byref, c_int32, c_size_t, c_uint64
from typing import Any, Dict, Optional, Tuple

from . import _native
from ._buffers import as_c_array
from ._errors import BufferTooSmallError, InvalidArgumentError
from ._handle import Handle

UNLIMITED = (1 << 31) - 1  # slots are int32 in the index; never filled by a real trace


class TierPlanner(Handle):
    """A replay of the engine's block index with ``cpu_blocks`` CPU slots and ``ssd_blocks`` SSD
    slots (0: no SSD tier). Each request is matched (CPU, then SSD blocks staged through CPU
    slots), loaded, and saved (all tokens but the last) with write-through to SSD, as the engine
    does when vLLM runs one request at a time; each tier evicts its least recently used leaves.
    :meth:`replay` may be called with consecutive chunks of one trace."""

    def __init__(self, tokens_per_block: int = 16, cpu_blocks: int = UNLIMITED, ssd_blocks: int = 0) -> None:
        lib = _native.lib()
        h = c_uint64()
        _native.check(lib.flexkv_plan_create(tokens_per_block, min(cpu_blocks, UNLIMITED), min(ssd_blocks, UNLIMITED),
                                             byref(h)))
        self._lib = lib
        self.tokens_per_block = tokens_per_block
        self._adopt(h.value, lib.flexkv_plan_destroy)

    def replay(self, tokens: Any, prompt_lengths: Any, total_lengths: Any,
               per_request: bool = False) -> Optional[Tuple[list, list, list]]:
        """Replays requests packed back to back in ``tokens`` (int64: numpy array, ``array('q')``
        or a sequence); request i is the next ``total_lengths[i]`` tokens, its first
        ``prompt_lengths[i]`` the prompt. With ``per_request`` returns the blocks each request
        loaded from CPU, from SSD, and the matched blocks it could not load."""
        keep_t, taddr, tn = as_c_array(tokens, 8)
        keep_p, paddr, pn = as_c_array(prompt_lengths, 8)
        keep_l, laddr, ln = as_c_array(total_lengths, 8)
        if pn != ln:
            raise InvalidArgumentError(f"{pn} prompt lengths but {ln} total lengths")
        outs = [(c_int32 * pn)() for _ in range(3)] if per_request else [None, None, None]
        _native.check(self._lib.flexkv_plan_replay(self._h(), taddr or None, tn, paddr or None, laddr or None, pn,
                                                   *outs))
        del keep_t, keep_p, keep_l
        return tuple(list(o) for o in outs) if per_request else None

    def replay_mooncake(self, hash_ids: Any, hash_counts: Any, input_lengths: Any, output_lengths: Any,
                        block_tokens: int = 512, first_output_id: int = 0,
                        per_request: bool = False) -> Optional[Tuple[list, list, list]]:
        """Replays Mooncake requests without a token buffer: request i has the next
        ``hash_counts[i]`` hash ids, each standing for the tokens ``h * block_tokens + k``;
        its prompt is cut to ``input_lengths[i]``, and its ``output_lengths[i]`` output tokens are
        ids no prompt holds, numbered from ``first_output_id`` (the outputs replayed so far)."""
        keep = [as_c_array(a, 8) for a in (hash_ids, hash_counts, input_lengths, output_lengths)]
        (_, haddr, hn), (_, caddr, cn), (_, iaddr, i_n), (_, oaddr, on) = keep
        if not cn == i_n == on:
            raise InvalidArgumentError(f"{cn} hash counts, {i_n} input lengths, {on} output lengths")
        outs = [(c_int32 * cn)() for _ in range(3)] if per_request else [None, None, None]
        _native.check(self._lib.flexkv_plan_replay_mooncake(self._h(), haddr or None, hn, caddr or None, iaddr or None,
                                                            oaddr or None, cn, block_tokens, first_output_id, *outs))
        del keep
        return tuple(list(o) for o in outs) if per_request else None

    def stats(self) -> Dict[str, int]:
        """Totals so far: requests, tokens, hit blocks per tier, blocks written per tier, evictions, levels."""
        needed = c_size_t()
        buf = ctypes.create_string_buffer(1024)
        rc = self._lib.flexkv_plan_stats(self._h(), buf, len(buf), byref(needed))
        if rc == BufferTooSmallError.status:
            buf = ctypes.create_string_buffer(needed.value)
            rc = self._lib.flexkv_plan_stats(self._h(), buf, len(buf), byref(needed))
        _native.check(rc)
        return json.loads(buf.value.decode("utf-8"))
