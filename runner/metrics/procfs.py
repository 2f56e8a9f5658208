"""The CPU time and resident memory of a process and its descendants, from /proc (Linux)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime
    rss_pages: int


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int
    processes: int


def parse_stat(text: str) -> ProcStat | None:
    """/proc/PID/stat: the command name is in parentheses and may hold spaces and ')'; fields after the
    last ')' are state, ppid, ... utime (14th field overall), stime (15th), ... rss (24th)."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    try:
        pid = int(head.split("(", 1)[0])
        return ProcStat(
            pid=pid,
            ppid=int(fields[1]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            rss_pages=int(fields[21]),
        )
    except (ValueError, IndexError):
        return None


def read_stats(proc: Path = Path("/proc")) -> list[ProcStat]:
    stats = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            parsed = parse_stat((entry / "stat").read_text(errors="replace"))
        except OSError:  # it ended between the listing and the read
            continue
        if parsed is not None:
            stats.append(parsed)
    return stats


def descendants(root: int, stats: Iterable[ProcStat]) -> list[ProcStat]:
    """The processes below root (not root itself)."""
    children: dict[int, list[ProcStat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    found: list[ProcStat] = []
    pending = [root]
    while pending:
        for child in children.pop(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return found


def usage(processes: Iterable[ProcStat], *, tick: float | None = None, page: int | None = None) -> Usage:
    tick = tick if tick is not None else 1 / os.sysconf("SC_CLK_TCK")
    page = page if page is not None else os.sysconf("SC_PAGE_SIZE")
    listed = list(processes)
    return Usage(
        cpu_seconds=sum(stat.cpu_ticks for stat in listed) * tick,
        rss_bytes=sum(stat.rss_pages for stat in listed) * page,
        processes=len(listed),
    )
