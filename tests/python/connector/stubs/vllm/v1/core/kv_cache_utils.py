"""``vllm.v1.core.kv_cache_utils``: how vLLM turns a block hash into the hash its KV events carry,
and the extra keys (LoRA name, cache salt) a block's hash covers, with vLLM's signatures."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from vllm import envs


def maybe_convert_block_hash(hash_bytes: bytes):
    """The bytes as they are, or (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES, on by default) their low
    64 bits, big-endian, as an int."""
    if not envs.VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES:
        return hash_bytes
    return int.from_bytes(hash_bytes, byteorder="big") & ((1 << 64) - 1)


def generate_block_hash_extra_keys(request, start_token_idx: int, end_token_idx: int,
                                   start_mm_idx: int) -> Tuple[Optional[Tuple[Any, ...]], int]:
    """The block's extra keys (no multimodal inputs here): the LoRA name, and the cache salt on
    the first block; None when there are none. Returns them and the next multimodal index."""
    keys: list = []
    lora = getattr(request, "lora_request", None)
    if lora is not None:
        keys.append(lora.lora_name)
    if start_token_idx == 0 and getattr(request, "cache_salt", None) is not None:
        keys.append(request.cache_salt)
    return (tuple(keys) if keys else None), start_mm_idx
