"""The ``flexkv`` command (also ``python -m flexkv``): ``version``, ``check``, ``plan`` and
``inspect``. Exit codes: 0 success, 1 a check or the work failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .._errors import FlexKVError
from ._errors import UsageError

EPILOG = """\
exit codes: 0 success, 1 a check or the work failed, 2 bad usage or input.
'flexkv stats' (the counters of a running engine) is not built: read them from vLLM's
logs and metrics (the connector's per-step stats) or from KVManager.stats()."""


def build_parser() -> argparse.ArgumentParser:
    from . import check, inspect_cache, plan, version

    p = argparse.ArgumentParser(prog="flexkv", description="FlexKv, the multi-tier KV-cache manager for vLLM: "
                                "installation check, capacity planning and SSD cache inspection.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=version.VersionAction, help="print the package, ABI and build, and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in (version, check, plan, inspect_cache):
        module.add_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except UsageError as e:
        print(f"flexkv {args.command}: {e}", file=sys.stderr)
        return 2
    except FlexKVError as e:
        print(f"flexkv {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"flexkv {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `flexkv plan ... | head`
        return 0
