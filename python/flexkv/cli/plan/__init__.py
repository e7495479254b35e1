"""``flexkv plan``: how much CPU and SSD a trace needs. Replays the trace through the engine's own
block index and eviction code (the control plane, no bytes), tier by tier as the engine behaves
with those capacities: CPU over SSD, each evicting its least recently used blocks, saves written
through to SSD. Prints, per capacity combination, the hit ratio by tier, the tokens not
recomputed, the blocks loaded per tier and the bandwidth that takes at the trace's request rate,
and with --prefill-tokens-per-s the GPU-seconds of prefill saved."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from .._errors import UsageError
from .._term import Progress, count
from . import model as model_
from . import traces

UNLIMITED_WORDS = ("inf", "unlimited", "max")


def _capacity_list(text: str, option: str) -> List[Tuple[Optional[float], Optional[int]]]:
    """(GB, None), (None, blocks) for '<n>b', or (None, None) for unlimited, per comma-separated value."""
    out = []
    for part in text.split(","):
        p = part.strip().lower()
        if not p:
            continue
        if p in UNLIMITED_WORDS:
            out.append((None, None))
            continue
        try:
            if p.endswith(("blocks", "b")):
                n = int(p[:-6] if p.endswith("blocks") else p[:-1])
                if n < 0:
                    raise ValueError
                out.append((None, n))
            else:
                gb = float(p)
                if not gb >= 0 or gb == float("inf"):
                    raise ValueError
                out.append((gb, None))
        except ValueError:
            raise UsageError(f"{option} {part!r}: expected GB (e.g. 64), a block count (e.g. 4000b) or 'inf'") from None
    if not out:
        raise UsageError(f"{option}: no capacity given")
    return out


def _blocks(kind: str, value: Tuple[Optional[float], Optional[int]], tokens_per_block: int,
            block_bytes: Optional[int]) -> Tuple[Optional[float], int, str]:
    """(GB as asked, slots, label) with the engine's arithmetic (flexkv_config_summary)."""
    from ...library_info import config_summary
    from ...tier_planner import UNLIMITED

    gb, blocks = value
    if blocks is not None:
        if blocks == 0 and kind == "cpu":
            raise UsageError("--cpu 0b: the CPU tier cannot be empty")
        return None, blocks, f"{blocks:,} blocks" if blocks else "-"
    if gb is None:
        return None, UNLIMITED, "unlimited"
    if gb == 0:
        if kind == "cpu":
            raise UsageError("--cpu 0: the CPU tier cannot be empty")
        return 0.0, 0, "-"
    if not block_bytes:
        raise UsageError(f"--{kind} in GB needs the KV size: give --model or --model-bytes-per-token "
                         "(or capacities in blocks, e.g. 4000b)")
    doc = {"tokens_per_block": tokens_per_block, "block_bytes": block_bytes}
    if kind == "cpu":
        doc["cpu_cache_gb"] = gb
    else:  # the CPU size does not matter for the SSD slot count
        doc.update(num_cpu_blocks=1, ssd_cache_gb=gb, ssd_cache_dir="unused")
    try:
        s = config_summary(doc)
    except Exception as e:
        raise UsageError(f"--{kind} {gb:g}: {e}") from None
    return gb, s["cpu_blocks"] if kind == "cpu" else s["ssd_slots"], f"{gb:g} GB"


def _source(args: argparse.Namespace):
    """(description, chunk iterator) of the trace to replay."""
    if args.generate:
        from ...workload import chat

        overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(chat.ChatParams)
                     if f.name != "seed" and getattr(args, f.name, None) is not None}
        try:
            params = chat.ChatParams(seed=args.seed, **overrides)
        except ValueError as e:
            raise UsageError(str(e)) from None
        count = params.conversations * params.turns
        what = f"generated chat trace (seed {args.seed}, {params.conversations} conversations x {params.turns} turns)"
        return {"source": "generate:chat", "format": "tokens", "params": params.as_dict()}, what, \
            traces.generated(chat.generate(params), count)
    if not os.path.isfile(args.trace):
        raise UsageError(f"{args.trace}: no such file")
    fmt = traces.detect(args.trace) if args.format == "auto" else args.format
    if fmt == "mooncake":
        what = f"{args.trace} (mooncake, {args.mooncake_block_tokens}-token hash blocks)"
        chunks = traces.mooncake(args.trace, args.mooncake_block_tokens)
    else:
        what, chunks = f"{args.trace} (tokens)", traces.tokens(args.trace)
    return {"source": args.trace, "format": fmt}, what, chunks


def run(args: argparse.Namespace) -> int:
    # The planner allocates its index as it grows; the .NET background GC thread then competes
    # with the replay for the two cores (measured: a second replay in one process up to 2x slower).
    # Only this process's GC is set, before the library loads.
    os.environ.setdefault("DOTNET_gcConcurrent", "0")
    from . import report, sweep

    if bool(args.trace) == bool(args.generate):
        raise UsageError("give a TRACE file or --generate chat (not both)")
    if not 1 <= args.tokens_per_block <= 4096:
        raise UsageError(f"--tokens-per-block must be in 1..4096, got {args.tokens_per_block}")
    for name in ("request_rate", "prefill_tokens_per_s"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0")
    bpt = model_.bytes_per_token(args.model, args.model_bytes_per_token)
    block_bytes = bpt * args.tokens_per_block if bpt else None
    cpus = [_blocks("cpu", v, args.tokens_per_block, block_bytes) for v in _capacity_list(args.cpu, "--cpu")]
    ssds = [_blocks("ssd", v, args.tokens_per_block, block_bytes) for v in _capacity_list(args.ssd, "--ssd")]
    caps = [sweep.Capacity(c[0], s[0], c[1], s[1], c[2], s[2]) for c, s in itertools.product(cpus, ssds)]
    trace_meta, what, chunks = _source(args)
    t0 = time.perf_counter()
    with Progress(f"replaying {len(caps)} capacit{'y' if len(caps) == 1 else 'ies'}") as p:
        def on_chunk(info, fraction):
            if not args.json:
                p.update(fraction, f"of the trace, {count(info.prompt_tokens)} prompt tokens")
        outcomes, info = sweep.run(caps, args.tokens_per_block, chunks, on_chunk)
    wall = time.perf_counter() - t0
    span = report.duration_s(info, args.request_rate)
    results = [report.result(o, args.tokens_per_block, block_bytes, span, args.prefill_tokens_per_s) for o in outcomes]
    replay_s = sum(o.replay_s for o in outcomes)
    doc: Dict[str, Any] = {
        "trace": {**trace_meta, "requests": info.requests, "prompt_tokens": info.prompt_tokens,
                  "output_tokens": info.total_tokens - info.prompt_tokens, "duration_s": span,
                  "request_rate": info.requests / span if span else None},
        "tokens_per_block": args.tokens_per_block, "bytes_per_token": bpt, "block_bytes": block_bytes,
        "prefill_tokens_per_s": args.prefill_tokens_per_s,
        "results": results,
        # Prompt tokens replayed per second of replay, over all combinations (each replays the trace).
        "replay_tokens_per_s": round(info.prompt_tokens * len(outcomes) / replay_s) if replay_s > 0 else None,
        "wall_s": round(wall, 3),
    }
    plot_error = None
    if args.plot:
        from . import plot

        if plot.available():
            name = f"{os.path.basename(args.trace)} ({doc['trace']['format']})" if args.trace else what
            plot.write(args.plot, results, f"{name}, {args.tokens_per_block}-token blocks")
            doc["plot"] = args.plot
        else:
            plot_error = (f"--plot {args.plot}: matplotlib is not installed (apt install python3-matplotlib, or pip "
                          "install matplotlib); the table has the same numbers")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(_header(doc, what, len(outcomes), replay_s))
        print(report.table(results))
        if "plot" in doc:
            print(f"\nwrote {args.plot}")
    if plot_error:
        print(f"flexkv plan: {plot_error}", file=sys.stderr)
        return 1
    return 0


def _header(doc: Dict[str, Any], what: str, combos: int, replay_s: float) -> str:
    t = doc["trace"]
    span = f" over {t['duration_s'] / 60:.1f} min ({t['request_rate']:.2f} req/s)" if t["duration_s"] else \
        " (no timestamps: give --request-rate for bandwidths)"
    lines = [f"trace    {what}: {t['requests']:,} requests, {t['prompt_tokens'] / 1e6:.1f}M prompt + "
             f"{t['output_tokens'] / 1e6:.1f}M output tokens{span}"]
    if doc["block_bytes"]:
        lines.append(f"model    {doc['bytes_per_token']:,} bytes per token: blocks of {doc['tokens_per_block']} tokens "
                     f"= {doc['block_bytes'] / (1 << 20):.2f} MiB")
    rate = doc["replay_tokens_per_s"]
    lines.append(f"replay   {combos} combination{'s' if combos != 1 else ''} in {replay_s:.1f} s of replay"
                 + (f" ({rate / 1e6:.1f}M prompt tokens/s)" if rate else ""))
    return "\n".join(lines) + "\n"


def add_parser(sub) -> None:
    from ...workload import chat

    p = sub.add_parser("plan", help="how much CPU and SSD a trace needs: hit ratio per tier for capacity sweeps",
                       description=__doc__.replace("``", "'"), formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Capacities: GB as the engine counts them (cpu_cache_gb, ssd_cache_gb: GiB), a block "
                              "count such as 4000b, or inf. Example: flexkv plan trace.jsonl --model llama-3-8b "
                              "--cpu 16,32,64 --ssd 0,256 --plot hits.png")
    p.add_argument("trace", nargs="?", metavar="TRACE", help="trace file (JSON lines)")
    p.add_argument("--format", choices=traces.FORMATS, default="auto", help="trace format (default: auto-detect)")
    p.add_argument("--mooncake-block-tokens", type=int, default=512, metavar="N",
                   help="tokens per Mooncake hash id (default 512)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--model-bytes-per-token", type=int, metavar="N", help="KV bytes per token (all layers, K and V)")
    size.add_argument("--model", metavar="NAME-OR-GEOMETRY",
                      help=f"{', '.join(sorted(model_.KNOWN))}, or layers=32,kv_heads=8,head_size=128[,dtype=bfloat16][,mla]")
    p.add_argument("--cpu", default="inf", metavar="GB[,GB...]", help="CPU tier sizes to try (default: inf)")
    p.add_argument("--ssd", default="0", metavar="GB[,GB...]", help="SSD tier sizes to try (default: 0, no SSD tier)")
    p.add_argument("--tokens-per-block", type=int, default=16, metavar="N", help="vLLM's block size (default 16)")
    p.add_argument("--request-rate", type=float, metavar="R", help="requests per second, for a trace without timestamps")
    p.add_argument("--prefill-tokens-per-s", type=float, metavar="N", help="prefill speed, to report GPU-seconds saved")
    p.add_argument("--plot", metavar="OUT.png", help="write hit ratio against capacity (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="machine-readable output (with replay_tokens_per_s)")
    g = p.add_argument_group("generated trace (instead of TRACE)")
    g.add_argument("--generate", choices=("chat",), help="replay the project's chat workload (flexkv.workload)")
    g.add_argument("--seed", type=int, default=0)
    for f in dataclasses.fields(chat.ChatParams):
        if f.name != "seed":
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=int, default=None, help=f"default {f.default}")
    p.set_defaults(run=run)
