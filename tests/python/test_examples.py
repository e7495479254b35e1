"""The vLLM example stays importable and documented without vLLM installed."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


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
