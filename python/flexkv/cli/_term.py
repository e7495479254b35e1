"""Terminal habits shared by the subcommands: colour only on a terminal (and never with
``NO_COLOR`` or ``TERM=dumb``), progress on stderr only when it is a terminal and the work has
run for more than two seconds, machine output (``--json``) always plain."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Optional

_COLOURS = {"green": "32", "yellow": "33", "red": "31", "dim": "2", "bold": "1"}
PROGRESS_AFTER_S = 2.0  # shorter work stays silent
_REFRESH_S = 0.2


def wants_colour(stream: IO) -> bool:
    """Whether ``stream`` is a terminal that should get ANSI colours."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str, stream: IO = sys.stdout) -> str:
    """``text`` in ``colour`` when ``stream`` is a colour terminal, else unchanged."""
    return f"\033[{_COLOURS[colour]}m{text}\033[0m" if wants_colour(stream) else text


class Progress:
    """``with Progress("replaying") as p: p.update(0.45, "65M tokens")`` draws one line on stderr,
    rewritten in place, once the work has taken longer than two seconds; nothing when stderr is
    not a terminal (a pipe or a CI log gets no carriage returns)."""

    def __init__(self, label: str, stream: Optional[IO] = None) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def __enter__(self) -> "Progress":
        return self

    def update(self, fraction: Optional[float] = None, detail: str = "") -> None:
        """``fraction`` of the work done (None: unknown) and a few words on it."""
        now = time.monotonic()
        if not self.enabled or now - self.start < PROGRESS_AFTER_S or now - self._last < _REFRESH_S:
            return
        self._last = now
        done = f" {fraction:6.1%}" if fraction is not None else ""
        self.stream.write(f"\r{self.label}:{done} {detail} ({now - self.start:.0f} s)\033[K")
        self.stream.flush()
        self._drawn = True

    def __exit__(self, *exc) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def count(n: float) -> str:
    """A number in k, M or G, for progress lines."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"
