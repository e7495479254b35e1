"""The README's commands work as written on a clone: every ``./build.sh`` command it names
exists (and every benchmark it names has its script), the demo variants it shows run and verify
their bytes, the Python snippet runs and loads what it saved, and the module commands answer.
CI runs the first of the README's two commands (``./build.sh demo``) itself, before the tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO

README = (REPO / "README.md").read_text()
ENV = {**os.environ, "PYTHONPATH": str(REPO / "python")}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def build_sh_commands() -> set[str]:
    """The subcommands build.sh's case statement accepts."""
    src = (REPO / "build.sh").read_text()
    body = src[src.index('case "${1:-all}" in'):]
    return set(re.findall(r"^\s+([a-z-]+)\)", body, flags=re.M))


def test_every_build_sh_command_in_the_readme_exists():
    named = set(re.findall(r"\./build\.sh(?: ([a-z-]+))?", README))
    named.discard("")
    assert {"demo", "test", "bench", "clean", "gpu-check"} <= named, named  # the README names them
    assert named <= build_sh_commands(), named - build_sh_commands()


def test_every_benchmark_the_readme_names_has_its_script():
    listed = re.search(r"`\./build\.sh bench NAME` \(run a benchmark:\s*(.*?);", README, flags=re.S)
    assert listed, "the README no longer lists the benchmarks"
    names = re.findall(r"`([a-z-]+)`", listed.group(1))
    assert names, listed.group(1)
    for name in names:
        assert (REPO / "benchmarks" / f"{name.replace('-', '_')}.py").is_file(), name


def test_the_two_commands_for_a_fresh_machine_are_the_ones_ci_runs():
    block = bash_blocks(README[README.index("## Two commands on a fresh machine"):])[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["./build.sh demo", "./build.sh test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "./build.sh demo" in ci and ci.rstrip().endswith("./build.sh test")


def run_demo(*args: str) -> str:
    # What `./build.sh demo ARGS` runs once it has built, with a smaller workload.
    out = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py"), "--conversations", "4", "--turns", "2", *args],
                         capture_output=True, text=True, timeout=300, env={**ENV, "FLEXKV_ENABLE_METRICS": "0"})
    assert out.returncode == 0 and "demo OK" in out.stdout, out.stdout + out.stderr
    return out.stdout


def test_the_readme_demo_with_an_ssd_tier_serves_hits_after_the_restart(tmp_path):
    assert "./build.sh demo --ssd" in README
    out = run_demo("--ssd", "--ssd-dir", str(tmp_path / "ssd"), "--ssd-cache-mb", "64")
    # "demo OK" already requires hits after the restart; the line says how many came from SSD.
    m = re.search(r"after restart\s+(\d+) blocks restored from SSD; final prompts served again: (\d+) of", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, out


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_readme_demo_with_a_redis_tier_serves_a_second_process():
    assert "./build.sh demo --redis" in README
    out = run_demo("--redis")
    m = re.search(r"second engine process\s+cold start, final prompts: (\d+) of \d+ tokens not recomputed \((\d+) blocks read from Redis", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, out


def test_the_readme_python_snippet_loads_what_it_saved():
    section = README[README.index("## Using the engine from Python"):]
    snippet = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    # What the snippet takes as given: a paged KV cache in vLLM's FlashAttention layout for the
    # model it names, and a prompt of four full blocks.
    num_blocks = 12
    g = torch.Generator().manual_seed(7)
    caches = [torch.randn((2, num_blocks, 16, 8, 128), generator=g).to(torch.bfloat16) for _ in range(32)]
    for t in caches:
        t[:, 4:].zero_()
    scope = {"caches": caches, "num_blocks": num_blocks, "token_ids": list(range(1, 4 * 16 + 2)),
             "block_ids": [0, 1, 2, 3, 4], "new_block_ids": [5, 6, 7, 8, 9]}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["n"] == 4 * 16 and len(scope["failed"]) == 0
    for t in caches:
        assert torch.equal(t[:, 5:9], t[:, 0:4])


@pytest.mark.parametrize("module", ["flexkv.workload"])
def test_the_readme_module_commands_answer_help(module):
    assert f"python -m {module} --help" in README
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60, env=ENV)
    assert out.returncode == 0 and "usage" in out.stdout.lower(), out.stderr
