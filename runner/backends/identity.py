"""Process identity on Linux: a pid plus its start time names one process, even after pid reuse. Both
backend families use it: the local supervisors, and the process submitting a cluster run."""

from __future__ import annotations

from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    state, started = fields[0], fields[19]
    return None if state in ("Z", "X") else started


def is_alive(pid: int | None, started: str | None) -> bool:
    if pid is None:
        return False
    current = start_time(pid)
    return current is not None and (started is None or current == started)
