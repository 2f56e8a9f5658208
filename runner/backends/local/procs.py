"""Processes on Linux: groups, signals, and processes marked with a run id."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def signal_group(pgid: int | None, signum: int) -> bool:
    """Send signum to a process group; False when the group no longer exists."""
    if pgid is None or pgid <= 1:
        return False
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int | None) -> bool:
    return signal_group(pgid, signal.SIGKILL)


def marked_processes(name: str, value: str) -> list[int]:
    """The processes whose environment holds name=value (those this user may read), this one excepted.

    A run's jobs carry RUNNER_RUN_ID=<run id>: whatever they start inherits it, also what escapes the
    process group with setsid or double forks, so this finds them all (unless a process clears its
    environment). /proc is read once; the cost is one small read per process on the machine.
    """
    needle = f"{name}={value}".encode()
    found = []
    me = os.getpid()
    try:
        entries = [path.name for path in Path("/proc").iterdir()]
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            environment = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environment.split(b"\0"):
            found.append(int(entry))
    return found


def signal_marked(name: str, value: str, signum: int) -> int:
    """Send signum to every process marked name=value; how many there were."""
    sent = 0
    for pid in marked_processes(name, value):
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue
        sent += 1
    return sent
