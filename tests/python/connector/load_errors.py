"""vLLM's ``_update_requests_with_invalid_blocks``: when loaded blocks are
reported invalid, a request's computed prefix is cut at its first invalid block, so that only
the valid prefix counts and the rest is recomputed (policy "recompute") or the request fails."""

from __future__ import annotations

from typing import Callable, Iterable

from vllm.v1.request import Request, RequestStatus


def truncate_at_invalid(reqs: Iterable[Request], invalid: set[int], block_ids_of: Callable[[str], list[int]],
                        block_size: int) -> set[str]:
    """Truncates ``num_computed_tokens`` (and ``num_external_computed_tokens``) of every
    request whose externally computed blocks include an invalid one; returns their ids."""
    affected: set[str] = set()
    marked: set[int] = set()  # a shared invalid block is recomputed by the first request only
    bs = block_size
    for req in reqs:
        if req.status == RequestStatus.WAITING_FOR_REMOTE_KVS:
            computed = req.num_computed_tokens  # set when it was parked: local + external
        else:
            computed = req.num_cached_tokens  # sync load: the loaded part is the cached part
        is_affected = truncated = False
        for idx, b in zip(range(-(-computed // bs)), block_ids_of(req.request_id)):
            if b not in invalid:
                continue
            is_affected = True
            if b in marked:
                continue
            marked.add(b)
            if truncated:
                continue
            truncated = True
            req.num_computed_tokens = idx * bs
            req.num_external_computed_tokens -= computed - req.num_computed_tokens
        if is_affected:
            if not truncated:
                # Every invalid block is recomputed by an earlier request: keep the cached part.
                req.num_computed_tokens = req.num_cached_tokens
            affected.add(req.request_id)
    return affected
