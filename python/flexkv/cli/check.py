"""``flexkv check``: is FlexKv installed right on this machine, for this configuration? One line
per check (ok, warn, fail, skip) with the fix for anything not ok; exit 1 when one fails."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List

from ._term import Progress, paint
from .checks import FAIL, OK, SKIP, WARN, Result
from .checks import configuration, library, memory, ptrace, remote, ssd

_COLOUR = {OK: "green", WARN: "yellow", FAIL: "red", SKIP: "dim"}


def _line(r: Result) -> str:
    fix = f" -- fix: {r.fix}" if r.fix and r.status in (WARN, FAIL) else ""
    return f"{paint(f'{r.status:<4}', _COLOUR[r.status])} {r.name:<9} {r.message}{fix}"


def run(args: argparse.Namespace) -> int:
    results: List[Result] = []

    def report(batch: List[Result]) -> None:
        results.extend(batch)
        if not args.json:
            for r in batch:
                print(_line(r), flush=True)

    lib_results, lib_ok = library.check()
    report(lib_results)
    cfg, cfg_results = configuration.check(args.config)
    report(cfg_results)
    summary = None
    if cfg is not None and lib_ok:
        summary, engine_results = configuration.engine_view(cfg)
        report(engine_results)
    if summary is not None:
        report(memory.check(summary))
    dirs = args.ssd_dir.split(";") if args.ssd_dir else (summary or {}).get("ssd_dirs", [])
    if not dirs and cfg and cfg.get("ssd_cache_gb"):
        dirs = [d for d in str(cfg.get("ssd_cache_dir", "")).split(";") if d]
    report(ssd.check([d.strip() for d in dirs if d.strip()], summary, cfg))
    report(remote.check(cfg, args.remote_url))
    report(ptrace.check(cfg))
    if args.cuda:
        from .checks import cuda

        report(cuda.check())
    else:
        report([Result("cuda", SKIP, "not checked (pass --cuda on a GPU machine)")])
    from .checks import vllm

    with Progress("importing vLLM") as p:
        found = vllm.check(tick=lambda: p.update(None, "in a child process"))
    report(found)
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    if args.json:
        print(json.dumps({"ok": failed == 0, "failed": failed, "warnings": warned,
                          "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        verdict = paint("FAILED", "red") if failed else paint("ready", "green")
        print(f"{verdict}: {failed} failed, {warned} warnings, {len(results)} checks", file=sys.stdout)
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="is FlexKv installed right here? (library, config, memory, SSD, Redis, GPU, vLLM)",
                       description=__doc__.splitlines()[0].replace("``", "'") + " The configuration is read as the "
                       "connector reads it: --config, else FLEXKV_CONFIG_PATH, else the FLEXKV_* variables.")
    p.add_argument("--config", metavar="FILE", help="configuration file (YAML or JSON, FlexKv's or FlexKV's keys)")
    p.add_argument("--ssd-dir", metavar="DIR", help="SSD cache directory to check (';' for several); "
                   "default: the configuration's ssd_cache_dir")
    p.add_argument("--remote-url", metavar="URL", help="Redis/Valkey URL(s) to check, redis://[user:password@]host:port; "
                   "default: the configuration's")
    p.add_argument("--cuda", action="store_true", help="also check the NVIDIA driver, GPUs and cuMemcpyBatchAsync")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)
