"""Who holds an SSD cache directory: the engine flocks ``flexkv.lock`` while it runs. Read from
/proc/locks, so looking never takes the lock (an engine starting at that moment is not refused)."""

from __future__ import annotations

import os
from typing import Optional

PROC_LOCKS = "/proc/locks"


def holder(lock_file: str, proc_locks: str = PROC_LOCKS) -> Optional[int]:
    """The pid holding a flock on ``lock_file`` (0 when held but the pid is not visible), None when free."""
    try:
        st = os.stat(lock_file)
        with open(proc_locks, encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        parts = line.split()
        if len(parts) > 1 and parts[1] == "->":  # a waiter, not a holder
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                return int(parts[4]) if parts[4].isdigit() else 0
        except ValueError:
            continue
    return None
