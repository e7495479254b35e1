"""The flexkv command's surface: --help lists the subcommands (and says stats is not built),
every subcommand has --help, usage errors exit 2, and version reports the build."""

from __future__ import annotations

import re
import subprocess

import pytest

from cli_support import flexkv, flexkv_json

from conftest import REPO
from flexkv import _native


def test_help_lists_the_subcommands_and_says_stats_is_not_built():
    out = flexkv("--help")
    assert out.returncode == 0
    for cmd in ("version", "check", "plan", "inspect"):
        assert re.search(rf"^\s+{cmd}\s", out.stdout, re.M), cmd
    assert "'flexkv stats'" in out.stdout and "not built" in out.stdout
    for cmd in ("version", "check", "plan", "inspect"):
        sub = flexkv(cmd, "--help")
        assert sub.returncode == 0 and "--json" in sub.stdout, cmd


def test_usage_errors_exit_2():
    assert flexkv().returncode == 2
    assert flexkv("no-such-command").returncode == 2
    assert flexkv("plan", "--cpu").returncode == 2
    out = flexkv("inspect")
    assert out.returncode == 2 and "SSD_DIR" in out.stderr


def test_version_reports_package_abi_build_and_runtime():
    info = flexkv_json("version")
    lib = info["library"]
    assert lib["loaded"] and lib["abi_version"] == lib["expected_abi_version"] == _native.ABI_VERSION
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", lib["git_sha"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|unknown", lib["build_date"])
    assert lib["instruction_set"] == "x86-64-v3" and lib["native_aot"] is True
    assert lib["dotnet_runtime"].startswith(".NET ") and lib["cpu_features"]["avx2"] is True
    assert info["cpu_flags_missing"] == []
    text = flexkv("version").stdout
    for row in ("flexkv", "library", "build", "runtime", "cpu", "this cpu", "python"):
        assert re.search(rf"^{row}\s", text, re.M), row
    short = flexkv("--version")
    assert short.returncode == 0 and f"library ABI {_native.ABI_VERSION}" in short.stdout


def test_build_sh_embeds_the_commit():
    # build.sh built this library (the test suite's build); a library built elsewhere says "unknown".
    sha = flexkv_json("version")["library"]["git_sha"]
    head = subprocess.run(["git", "-C", str(REPO), "log", "--format=%H", "-n", "200"], capture_output=True, text=True)
    if sha == "unknown" or head.returncode != 0:
        pytest.skip("this library was not built by build.sh from a git checkout")
    assert sha.removesuffix("-dirty") in head.stdout.split()  # one of this branch's commits


def test_a_library_that_cannot_load_is_reported(tmp_path):
    out = flexkv("version", env={"FLEXKV_LIBRARY_PATH": str(tmp_path / "missing.so")})
    assert out.returncode == 1 and "not loadable" in out.stdout and "does not exist" in out.stdout
    doc = flexkv_json("check", env={"FLEXKV_LIBRARY_PATH": str(tmp_path / "missing.so")}, expect=1)
    (lib,) = [c for c in doc["checks"] if c["name"] == "library"]
    assert lib["status"] == "fail" and "./build.sh" in lib["fix"]


def test_the_wheel_declares_the_console_script():
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.scripts]\nflexkv = "flexkv.cli:main"' in text
