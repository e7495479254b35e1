"""``flexkv inspect SSD_DIR``: what a persistent SSD cache holds (fingerprint and geometry,
blocks, bytes, journal state, free slots, last write), read without changing it; ``--verify``
re-reads every block and checks it as a load would; ``--repair`` (the only option that writes)
drops the bad blocks' entries from the journal."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from typing import Any, Dict, List, Optional

from .._errors import FlexKVError
from ._errors import UsageError
from ._locks import holder
from ._term import Progress, paint

BAD_LIMIT = 1000  # bad slots listed (all are counted)


def _config(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if not path:
        return None
    from .checks import configuration

    cfg, results = configuration.check(path)
    if cfg is None:
        raise UsageError(results[0].message)
    if not configuration.geometry_known(cfg):
        raise UsageError(f"{path} has no block size (block_bytes, or num_layers/num_kv_heads/head_size): "
                         "the cache's fingerprint cannot be compared without it")
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..ssd_inspect import SsdCache

    dirs = [d.strip() for d in args.ssd_dir.split(";") if d.strip()]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if not dirs or missing:
        raise UsageError(f"{', '.join(missing) or args.ssd_dir!r}: no such directory")
    cfg = _config(args.config)
    pid = holder(os.path.join(dirs[0], "flexkv.lock"))
    with SsdCache(";".join(dirs), cfg) as cache:
        s = cache.summary()
        s["in_use_by_pid"] = pid
        rc = 0 if s["readable"] else 1
        if (args.verify or args.repair) and s["readable"]:
            bad = _verify(cache, s, quiet=args.json)
            s["verify"] = bad
            if bad["bad_blocks"]:
                rc = 1
                if args.repair:
                    if pid is not None:
                        raise FlexKVError(f"{dirs[0]} is in use by process {pid}: stop the engine before --repair")
                    if bad["bad_blocks"] > len(bad["bad_slots"]):
                        raise FlexKVError(f"{bad['bad_blocks']} bad blocks; --repair drops at most {BAD_LIMIT} per run: "
                                          "run it again")
                    s["repair"] = {"dropped": cache.repair(bad["bad_slots"])}
                    rc = 0
    print(json.dumps(s, indent=2) if args.json else render(s, cfg is not None))
    return rc


def _verify(cache, s: Dict[str, Any], quiet: bool) -> Dict[str, Any]:
    done = (0, 0, 0, [])
    with Progress("verifying") as p:
        for done in cache.verify(s["slots"], BAD_LIMIT):
            if not quiet:
                p.update(done[0] / max(s["slots"], 1), f"{done[1]:,} blocks read, {done[2]:,} bad")
    return {"checked_blocks": done[1], "bad_blocks": done[2], "bad_slots": list(done[3])}


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso[:26].rstrip("Z")).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: float) -> str:
    for div, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def _label(s: Dict[str, Any], compared: bool) -> str:
    """The fingerprint's fields the engine wrote beside the journal (the secret only as set or not)."""
    f = s.get("fingerprint_fields")
    hint = "" if compared else "; --config FILE says whether a configuration matches"
    if not f:
        return paint(s.get("fingerprint_fields_problem") or "unknown", "yellow") + hint
    return (f"model {f.get('model_name') or '(unnamed)'}, {f.get('dtype')} {f.get('attention', '').upper()}, layout "
            f"{f.get('layout') or '(none)'}, TP rank {f.get('tp_rank')} of {f.get('tp_size')}, "
            f"{f.get('tokens_per_block')} tokens per block, secret {'set' if f.get('secret_set') else 'not set'}{hint}")


def render(s: Dict[str, Any], compared: bool) -> str:
    rows: List[tuple] = [("cache", f"{'; '.join(d['path'] for d in s['directories'])}")]
    j = s["journal"]
    if not j["exists"]:
        rows.append(("journal", paint("none: this directory holds no FlexKv cache", "yellow")))
        return _rows(rows)
    compact = "compact" if j["records"] == s.get("blocks", -1) and not j["torn_records"] else \
        "compacted at the next engine start"
    rows.append(("journal", f"{j['records']:,} records, {j['torn_records']} torn, last written {_when(j['modified'])}"
                 + (f"; {compact}" if s["readable"] else "")))
    if not s["readable"]:
        rows.append(("problem", paint(s["problem"], "red")))
        return _rows(rows)
    rows += [
        ("geometry", f"fingerprint {s['fingerprint']}: blocks of {s['block_bytes']:,} bytes in {s['slot_bytes']:,}-byte "
                     f"slots, {s['slots']:,} slots"),
        ("written by", _label(s, compared)),
        ("blocks", f"{s['blocks']:,} ({_size(s['bytes'])}), {s['root_blocks']:,} first blocks, "
                   f"{s['restorable_blocks']:,} restorable, {s['free_slots']:,} free slots"),
    ]
    if s["unreachable_blocks"]:
        rows.append(("", paint(f"{s['unreachable_blocks']:,} blocks lack a parent and are dropped at the next start",
                               "yellow")))
    for d in s["directories"]:
        if not d["data_file"]:
            rows.append(("data", paint(f"{d['path']}/flexkv-blocks.dat is missing", "red")))
            continue
        size = "" if d["data_bytes"] == d["data_expected_bytes"] else \
            paint(f" (expected {_size(d['data_expected_bytes'])}: all directories of the cache given, in order?)", "yellow")
        rows.append(("data", f"{d['path']}/flexkv-blocks.dat: {_size(d['data_bytes'])}{size}, "
                             f"last written {_when(d['data_modified'])}"))
    pid = s["in_use_by_pid"]
    rows.append(("lock", "free (no engine uses it)" if pid is None else
                 paint(f"held by process {pid or '(not visible)'}: an engine runs on it (this is a snapshot)", "yellow")))
    if "config" in s:
        c = s["config"]
        rows.append(("config", paint("an engine with this configuration reuses it", "green") if c["reused"] else
                     paint(f"an engine with this configuration discards it: {c['discard_reason']}", "yellow")))
    if "verify" in s:
        v = s["verify"]
        listed = ", ".join(map(str, v["bad_slots"][:20])) + (" ..." if v["bad_blocks"] > 20 else "")
        rows.append(("verify", paint(f"{v['checked_blocks']:,} blocks read, all good", "green") if not v["bad_blocks"]
                     else paint(f"{v['checked_blocks']:,} blocks read, {v['bad_blocks']:,} bad (slots {listed}); "
                                "an engine drops each one when it fails to load", "red")))
    if "repair" in s:
        rows.append(("repair", f"{s['repair']['dropped']:,} journal entries dropped"))
    return _rows(rows)


def _rows(rows: List[tuple]) -> str:
    return "\n".join(f"{k:<9} {v}" for k, v in rows)


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="what a persistent SSD cache directory holds (read only); --verify checks blocks",
                       description=__doc__.replace("``", "'"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ssd_dir", metavar="SSD_DIR", help="the cache directory (';'-separated when striped over several)")
    p.add_argument("--config", metavar="FILE", help="say whether an engine with this configuration reuses the cache")
    p.add_argument("--verify", action="store_true", help="re-read every block and check it (read only)")
    p.add_argument("--repair", action="store_true", help="with the verify: drop the bad blocks' journal entries "
                   "(writes; refused while an engine uses the directory)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)
