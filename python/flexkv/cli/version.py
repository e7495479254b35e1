"""``flexkv version``: the package, the library it loads (ABI, commit, build date), the .NET
runtime inside it and the CPU features its code uses."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any, Dict

from .. import __version__, _native


def collect() -> Dict[str, Any]:
    """Everything ``flexkv version`` reports; a library that cannot load is reported, not raised."""
    glibc = _native.glibc_version()
    info: Dict[str, Any] = {
        "package": {"version": __version__, "path": str(Path(__file__).resolve().parents[1])},
        "python": platform.python_version(),
        "glibc": ".".join(map(str, glibc)) if glibc else "unknown",
        "cpu_flags_required": list(_native.REQUIRED_CPU_FLAGS),
        "cpu_flags_missing": _native.missing_cpu_flags(),
        "library": {"path": str(_native.library_path()), "expected_abi_version": _native.ABI_VERSION},
    }
    try:
        from ..library_info import build_info

        info["library"].update(build_info())
        info["library"]["loaded"] = True
    except Exception as e:  # the point of the command is to say why
        info["library"].update(loaded=False, error=str(e))
    return info


def one_line(info: Dict[str, Any]) -> str:
    """``flexkv --version``: package, ABI and commit on one line."""
    lib = info["library"]
    if not lib.get("loaded"):
        return f"flexkv {info['package']['version']} (library not loadable: {lib['error']})"
    return (f"flexkv {info['package']['version']} (library ABI {lib['abi_version']}, git {_short(lib['git_sha'])}, "
            f"built {lib['build_date']})")


def _short(sha: str) -> str:
    return sha if sha == "unknown" else sha[:12] + (" dirty" if sha.endswith("-dirty") else "")


def render(info: Dict[str, Any]) -> str:
    lib = info["library"]
    rows = [("flexkv", f"{info['package']['version']}  ({info['package']['path']})")]
    if lib.get("loaded"):
        features = [k.upper() for k in ("avx2", "bmi2", "fma", "avx512f") if lib["cpu_features"].get(k)]
        vectors = "512" if lib["cpu_features"].get("vector512") else "256" if lib["cpu_features"].get("vector256") else "128"
        rows += [
            ("library", f"{lib['path']}  ABI {lib['abi_version']}"),
            ("build", f"git {_short(lib['git_sha'])}, built {lib['build_date']}"),
            ("runtime", f"{lib['dotnet_runtime']}, {'NativeAOT' if lib['native_aot'] else 'JIT'}, {lib['runtime_identifier']}"),
            ("cpu", f"compiled for {lib['instruction_set']}; uses {' '.join(features)}, {vectors}-bit vectors"),
        ]
    else:
        rows.append(("library", f"{lib['path']}: not loadable: {lib['error']}"))
    missing = info["cpu_flags_missing"]
    rows.append(("this cpu", f"lacks {' '.join(missing)}" if missing else f"has {' '.join(info['cpu_flags_required'])}"))
    rows.append(("python", f"{info['python']} (glibc {info['glibc']})"))
    return "\n".join(f"{k:<9} {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    info = collect()
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0 if info["library"].get("loaded") else 1


class VersionAction(argparse.Action):
    """``--version``: computed when asked, so ``--help`` works even with a broken library."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        info = collect()
        print(one_line(info))
        parser.exit(0 if info["library"].get("loaded") else 1)


def add_parser(sub) -> None:
    p = sub.add_parser("version", help="package, library ABI and build, .NET runtime, CPU features",
                       description=__doc__.splitlines()[0].replace("``", "'"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)
