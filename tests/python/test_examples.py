"""The vLLM example stays importable and documented without vLLM installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "prefix_caching_flexkv.py"


def test_prefix_caching_example_help_works_without_vllm():
    out = subprocess.run([sys.executable, str(REPO / "examples" / "prefix_caching_flexkv.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in ("--model", "--tp-size", "--gpu-memory-util"):
        assert flag in out.stdout


def test_prefix_caching_example_requires_a_model():
    out = subprocess.run([sys.executable, str(REPO / "examples" / "prefix_caching_flexkv.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--model" in out.stderr


def test_prefix_caching_example_runs_as_a_program():
    out = subprocess.run([str(EXAMPLE), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--model" in out.stdout, out.stderr


def test_prefix_caching_example_without_vllm_says_so_without_a_traceback():
    # Asked in a child: this process may have the connector tests' stub vllm on its path.
    if subprocess.run([sys.executable, "-c", "import vllm"], capture_output=True, timeout=60).returncode == 0:
        pytest.skip("vLLM is installed here")
    out = subprocess.run([sys.executable, str(EXAMPLE), "--model", "m"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "vLLM, which is not installed" in out.stderr and "Traceback" not in out.stderr
