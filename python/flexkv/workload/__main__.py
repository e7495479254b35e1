"""Command line: ``python -m flexkv.workload generate`` writes a chat trace (JSON lines);
``python -m flexkv.workload replay TRACE`` replays one through the reference cache and prints
one JSON line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from . import chat, reference, trace_file


def _generate(a: argparse.Namespace) -> None:
    base = chat.small(a.seed) if a.small else chat.ChatParams(seed=a.seed)
    overrides = {f.name: getattr(a, f.name) for f in dataclasses.fields(chat.ChatParams)
                 if f.name != "seed" and getattr(a, f.name) is not None}
    params = dataclasses.replace(base, **overrides)
    if a.out == "-":
        sys.stdout.write(json.dumps(trace_file.header(params), separators=(",", ":")) + "\n")
        for r in chat.generate(params):
            sys.stdout.write(json.dumps(r, separators=(",", ":")) + "\n")
    else:
        trace_file.write(a.out, params)


def _replay(a: argparse.Namespace) -> None:
    head, requests = trace_file.read(a.trace)
    t0 = time.perf_counter()
    r = reference.replay(requests, a.tokens_per_block, a.capacity)
    print(json.dumps({
        "params": head.get("params"), "requests": len(requests), "tokens_per_block": a.tokens_per_block,
        "capacity_blocks": a.capacity, "prompt_tokens": r.prompt_tokens, "matched_tokens": r.matched_tokens,
        "hit_ratio": round(r.hit_ratio, 6), "stored_blocks": r.stored_blocks, "evicted_blocks": r.evicted_blocks,
        "replay_s": round(time.perf_counter() - t0, 3)}))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m flexkv.workload", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write a multi-turn chat trace")
    g.add_argument("--out", default="-", help="trace file ('-': standard output)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--small", action="store_true", help="the test preset: 8 conversations x 3 turns")
    for f in dataclasses.fields(chat.ChatParams):
        if f.name != "seed":
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=int, default=None,
                           help=f"default {f.default}")
    g.set_defaults(run=_generate)
    r = sub.add_parser("replay", help="replay a trace through the reference cache")
    r.add_argument("trace")
    r.add_argument("--tokens-per-block", type=int, default=16)
    r.add_argument("--capacity", type=int, default=None, help="blocks (default: unlimited)")
    r.set_defaults(run=_replay)
    a = p.parse_args(argv)
    a.run(a)


if __name__ == "__main__":
    main()
