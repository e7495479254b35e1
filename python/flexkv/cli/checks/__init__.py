"""The checks of ``flexkv check``: each returns :class:`Result` lines (ok, warn, fail or skip,
with the fix for anything not ok). Nothing here prints or exits; :mod:`flexkv.cli.check` does."""

from __future__ import annotations

import dataclasses

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclasses.dataclass
class Result:
    """One line of the report: what was checked (``name``), the verdict, what was found, the fix."""

    name: str
    status: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
