"""KV bytes per token of a model, from ``--model-bytes-per-token N`` or ``--model NAME-OR-GEOMETRY``:
a known name, or ``layers=32,kv_heads=8,head_size=128[,dtype=bfloat16][,mla]``. The arithmetic is
the engine's (block_bytes = layers x kv_heads x head_size x dtype size x (1 for MLA, else 2 for K
and V) x tokens_per_block), for the whole model: one engine block holds every TP rank's shard."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from ..._convert import dtype_bytes
from .._errors import UsageError

# name -> (layers, kv_heads, head_size, dtype, mla), from the models' published configurations.
KNOWN: Dict[str, Tuple[int, int, int, str, bool]] = {
    "llama-3-8b": (32, 8, 128, "bfloat16", False),
    "llama-3-70b": (80, 8, 128, "bfloat16", False),
    "llama-3.1-405b": (126, 8, 128, "bfloat16", False),
    "mistral-7b": (32, 8, 128, "bfloat16", False),
    "qwen2.5-7b": (28, 4, 128, "bfloat16", False),
    "qwen2.5-32b": (64, 8, 128, "bfloat16", False),
    "qwen2.5-72b": (80, 8, 128, "bfloat16", False),
    "qwen3-32b": (64, 8, 128, "bfloat16", False),
    # MLA: one latent vector per token and layer (kv_lora_rank 512 + rope 64).
    "deepseek-v3": (61, 1, 576, "bfloat16", True),
}


def bytes_per_token(model: Optional[str], explicit: Optional[int]) -> Optional[int]:
    """KV bytes per token, or None when neither option is given."""
    if explicit is not None:
        if explicit < 1:
            raise UsageError(f"--model-bytes-per-token must be >= 1, got {explicit}")
        return explicit
    if not model:
        return None
    key = model.strip().lower()
    if key in KNOWN:
        layers, heads, head, dtype, mla = KNOWN[key]
    elif "=" in key:
        layers, heads, head, dtype, mla = _geometry(key)
    else:
        raise UsageError(f"--model {model!r}: not a known model ({', '.join(sorted(KNOWN))}) nor a geometry "
                         "like layers=32,kv_heads=8,head_size=128,dtype=bfloat16")
    size = dtype_bytes(dtype)
    if not size:
        raise UsageError(f"--model: unknown dtype {dtype!r} (use float16, bfloat16, float32 or fp8)")
    return layers * heads * head * size * (1 if mla else 2)


def _geometry(text: str) -> Tuple[int, int, int, str, bool]:
    fields: Dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.strip().partition("=")
        fields[k.strip()] = v.strip() if sep else "1"
    try:
        layers, heads, head = (int(fields.pop(k)) for k in ("layers", "kv_heads", "head_size"))
    except KeyError as e:
        raise UsageError(f"--model {text!r}: {e.args[0]}= is missing (need layers, kv_heads, head_size)") from None
    except ValueError:
        raise UsageError(f"--model {text!r}: layers, kv_heads and head_size must be integers") from None
    dtype = fields.pop("dtype", "float16")
    mla = fields.pop("mla", "0") not in ("0", "false", "no")
    if fields:
        raise UsageError(f"--model {text!r}: unknown field(s) {', '.join(fields)}")
    if min(layers, heads, head) < 1:
        raise UsageError(f"--model {text!r}: layers, kv_heads and head_size must be >= 1")
    return layers, heads, head, dtype, mla
