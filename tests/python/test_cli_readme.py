"""README's 'The flexkv command' example prints what the command prints: its table is the
command's output on the generated trace (deterministic), so the documentation cannot drift."""

from __future__ import annotations

import importlib.util
import re
import shlex

from cli_support import flexkv

from conftest import REPO


def test_readme_plan_example_is_the_commands_output(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```console\n\$ (flexkv plan .*?)\n(trace .*?)```", readme, re.S)
    assert block, "the README's flexkv plan example is missing"
    command = block.group(1).replace("\\\n", " ")
    args = shlex.split(command)[2:]
    at = args.index("--plot")
    if importlib.util.find_spec("matplotlib") is None:
        del args[at:at + 2]  # the table does not depend on the plot
    else:
        args[at + 1] = str(tmp_path / "plan.png")  # the committed PNG stays as it is
    out = flexkv("plan", *args)
    assert out.returncode == 0, out.stderr
    shown = [line for line in out.stdout.splitlines() if line.strip() and not line.startswith(("replay", "wrote"))]
    assert shown == [line for line in block.group(2).splitlines() if line.strip()]
    assert (REPO / "docs" / "flexkv-plan.png").stat().st_size < 100_000
