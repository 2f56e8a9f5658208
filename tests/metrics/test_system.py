"""The run's CPU and memory from /proc, and system.jsonl's lines."""

from __future__ import annotations

import os
from pathlib import Path

from runner.metrics.gpu import GpuSample
from runner.metrics.procfs import ProcStat, descendants, parse_stat, read_stats, usage
from runner.metrics.system import SystemSampler

TICK = 0.01
PAGE = 4096


def stat_text(pid: int, ppid: int, name: str, *, utime: int, stime: int, rss: int) -> str:
    # fields as the kernel writes them: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss ...
    return (
        f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 "
        f"12345 1000000 {rss} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
    )


def fake_proc(root: Path, processes: list[tuple[int, int, str, int, int, int]]) -> Path:
    for pid, ppid, name, utime, stime, rss in processes:
        (root / str(pid)).mkdir(parents=True, exist_ok=True)
        (root / str(pid) / "stat").write_text(stat_text(pid, ppid, name, utime=utime, stime=stime, rss=rss))
    (root / "self").mkdir(exist_ok=True)
    (root / "meminfo").write_text("MemTotal: 1 kB\n")
    return root


def test_a_command_name_with_spaces_and_parentheses_is_parsed() -> None:
    assert parse_stat(stat_text(42, 7, "python (train) x", utime=150, stime=50, rss=1000)) == ProcStat(
        42, 7, 200, 1000
    )
    assert parse_stat("garbage") is None


def test_the_run_is_every_process_below_the_agent() -> None:
    stats = [ProcStat(1, 0, 5, 1), ProcStat(10, 1, 100, 10), ProcStat(11, 10, 50, 20), ProcStat(99, 0, 7, 3)]
    below = descendants(1, stats)
    assert sorted(stat.pid for stat in below) == [10, 11]
    assert usage(below, tick=TICK, page=PAGE).cpu_seconds == 1.5
    assert usage(below, tick=TICK, page=PAGE).rss_bytes == 30 * PAGE


def test_samples_give_cpu_as_a_rate_since_the_previous_one_and_gpus_only_when_held(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", [(1, 0, "agent", 0, 0, 1), (10, 1, "python", 100, 0, 2560)])
    held: list[GpuSample] = []
    sampler = SystemSampler(1, {}, proc=proc, gpus=lambda env: held)
    tick = 1 / os.sysconf("SC_CLK_TCK")
    first = sampler.sample(100.0)
    assert first == {"time": 100.0, "cpu": None, "memory": 2560 * os.sysconf("SC_PAGE_SIZE"), "processes": 1}
    (proc / "10" / "stat").write_text(
        stat_text(10, 1, "python", utime=100 + round(2 / tick), stime=0, rss=2560)
    )
    held.append(GpuSample(0, "GPU-1", "NVIDIA H200", 97.0, 80123.0, 143771.0))
    second = sampler.sample(101.0)
    assert second["cpu"] == 200.0  # two cores busy for the second between the samples
    assert second["gpus"] == [
        {
            "index": 0,
            "uuid": "GPU-1",
            "name": "NVIDIA H200",
            "utilization": 97.0,
            "memoryUsed": 80123.0,
            "memoryTotal": 143771.0,
        }
    ]


def test_this_process_is_found_in_the_real_proc() -> None:
    mine = [stat for stat in read_stats() if stat.pid == os.getpid()]
    assert len(mine) == 1 and mine[0].ppid == os.getppid()
