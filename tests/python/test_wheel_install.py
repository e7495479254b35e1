"""The built wheel installs into a bare virtual environment (no system site packages, no index,
no dependencies) and works there: the package carries everything it needs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

TAG = "py3-none-manylinux_2_34_x86_64"

USE = """
import ctypes, sys
import flexkv
assert flexkv.__file__.startswith(sys.prefix), flexkv.__file__
try:
    import numpy
except ImportError:
    pass
else:
    raise SystemExit("numpy is importable: the venv sees system site packages")
host = (ctypes.c_uint8 * (8 * 4096))()
with flexkv.KVManager(num_cpu_blocks=8, block_bytes=4096, use_hugepage_cpu_buffer=False) as m:
    m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(host), 4096, 4096)], 8)
    assert m.put("a", list(range(33)), [0, 1])
    print("MATCHED", m.get_num_new_matched_tokens("b", list(range(33)), 0))
"""


def built_wheel():
    wheels = sorted((REPO / "dist").glob("flexkv-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in dist/ (./build.sh builds it), found {wheels}"
    return wheels[0]


def test_wheel_is_tagged_with_its_glibc_requirement():
    assert built_wheel().name == f"flexkv-0.1.0-{TAG}.whl"


@pytest.mark.skipif(importlib.util.find_spec("ensurepip") is None,
                    reason="python3-venv is not installed (no ensurepip): cannot create a bare venv")
def test_wheel_installs_and_runs_in_a_venv_without_system_site_packages(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLEXKV_LIBRARY_PATH")}
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(built_wheel())],
                   check=True, timeout=300, env=env, cwd=tmp_path)
    out = subprocess.run([py, "-c", USE], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "MATCHED 32" in out.stdout


@pytest.mark.skipif(importlib.util.find_spec("ensurepip") is None,
                    reason="python3-venv is not installed (no ensurepip): cannot create a bare venv")
def test_wheel_installs_the_flexkv_command(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLEXKV_LIBRARY_PATH", "FLEXKV_CONFIG_PATH")}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    str(built_wheel())], check=True, timeout=300, env=env, cwd=tmp_path)
    cmd = str(venv / "bin" / "flexkv")
    out = subprocess.run([cmd, "--version"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0 and "library ABI" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([cmd, "check"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0 and "ok   library" in out.stdout, out.stdout + out.stderr
    # plan needs nothing but the standard library (the bare venv has no numpy).
    out = subprocess.run([cmd, "plan", "--generate", "chat", "--conversations", "2", "--turns", "2", "--json"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"][0]["hit_ratio"]["total"] > 0
