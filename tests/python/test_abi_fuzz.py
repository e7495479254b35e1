"""A seeded fuzz run of the C ABI (cases in abi_fuzz_cases.py): bad handles (0, random, off by
one from a live one, of the wrong kind, destroyed), null pointers with non-zero lengths,
lengths past any buffer, out-of-range int32 values, too-small output buffers, invalid UTF-8
request ids, configurations whose sizes overflow, and bad layer descriptors.

Each case must return a negative status with a fresh, non-empty flexkv_last_error message, and
the process must live. The cases run in ten spawned child processes of about thirty cases each;
when a child dies or hangs, the first case it did not answer is the culprit, and the rest of its
group go on in a new child. Layouts that once crashed the library or were wrongly accepted run alone, one child each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import flexkv
from abi_fuzz_cases import build_cases

CHILD = str(Path(__file__).with_name("abi_fuzz_cases.py"))
GROUPS = 10
CHILD_TIMEOUT_S = 60
CASES = build_cases()
REGULAR = [c for c in CASES if not c["known"]]
KNOWN = [c for c in CASES if c["known"]]
SIZE = -(-len(REGULAR) // GROUPS)
CHUNKS = [REGULAR[i:i + SIZE] for i in range(0, len(REGULAR), SIZE)]
# These leave the recorded message as it is, by design (reading it must not replace it).
KEEPS_MESSAGE = ("flexkv_last_error(", "flexkv_abi_version(")


def _env() -> dict:
    package_root = str(Path(flexkv.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}


def _death(returncode, timed_out: bool, stderr: str) -> str:
    if timed_out:
        return f"hung (no answer within {CHILD_TIMEOUT_S} s)"
    why = next((l.strip() for l in stderr.splitlines() if l.strip()), "")[:300]
    if returncode is not None and returncode < 0:
        return f"crashed the process ({signal.Signals(-returncode).name}): {why}"
    return f"ended the process with status {returncode}: {why}"


def run_cases(cases: List[Dict]) -> Dict[int, str]:
    """Runs ``cases`` in as few children as their crashes allow; returns id -> "" (as required)
    or what went wrong."""
    outcome: Dict[int, str] = {}
    todo = list(cases)
    while todo:
        p = subprocess.Popen([sys.executable, CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
        timed_out = False
        try:
            out, err = p.communicate(json.dumps(todo), timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            timed_out = True
            p.kill()
            out, err = p.communicate()
        answered = [json.loads(line) for line in out.splitlines() if line.strip()]
        for r, case in zip(answered, todo):
            outcome[case["id"]] = _judge(case, r)
        if len(answered) < len(todo):
            outcome[todo[len(answered)]["id"]] = _death(p.returncode, timed_out, err)
            todo = todo[len(answered) + 1:]
            continue
        if p.returncode != 0:  # every case answered, but the process did not end well
            outcome[todo[-1]["id"]] += f"; then the process {_death(p.returncode, timed_out, err)}"
        todo = []
    return outcome


def _judge(case: Dict, r: Dict) -> str:
    rc, msg = r["rc"], r["message"]
    if not isinstance(rc, int):
        return f"the case itself failed: {msg}"
    if rc >= 0:
        return f"returned {rc}, not an error"
    if not msg:
        return f"returned {rc} with an empty flexkv_last_error"
    if r["stale"] and not case["call"].startswith(KEEPS_MESSAGE):
        return f"returned {rc} without recording a message (flexkv_last_error still holds the previous one)"
    return ""


@pytest.mark.parametrize("chunk", CHUNKS, ids=[f"cases-{c[0]['id']}-{c[-1]['id']}" for c in CHUNKS])
def test_every_bad_call_is_refused_and_the_process_lives(chunk):
    outcome = run_cases(chunk)
    failed = [f"case {c['id']}: {c['call']}\n    -> {outcome[c['id']]}" for c in chunk if outcome[c["id"]]]
    assert not failed, f"{len(failed)} of {len(chunk)} cases:\n" + "\n".join(failed)


@pytest.mark.parametrize("case", KNOWN, ids=[f"case-{c['id']}" for c in KNOWN])
def test_layouts_that_crashed_or_were_accepted_once_are_refused(case):
    # Each runs alone in its own child: a regression would kill the process, not the suite.
    why = run_cases([case])[case["id"]]
    assert not why, f"{case['call']}\n    -> {why}"


def test_the_fuzz_run_has_a_few_hundred_cases_in_about_ten_children():
    assert len(CASES) >= 300 and len(CHUNKS) == GROUPS and max(map(len, CHUNKS)) <= 40
    assert len({c["call"] for c in CASES}) == len(CASES)  # no case twice
