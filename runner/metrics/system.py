"""system.jsonl: samples of a run's CPU, memory and GPUs (the lines are described in lines.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from runner.metrics.gpu import GpuSample, read_gpus
from runner.metrics.lines import Line
from runner.metrics.procfs import Usage, descendants, read_stats, usage


def system_line(
    time: float, now: Usage, before: Usage | None, elapsed: float | None, gpus: list[GpuSample]
) -> Line:
    """One sample; cpu is percent of one core since the previous sample (None for the first)."""
    cpu = None
    if before is not None and elapsed:
        # processes that ended since take their time with them: never a negative rate
        cpu = round(max(now.cpu_seconds - before.cpu_seconds, 0.0) / elapsed * 100, 1)
    line: Line = {"time": time, "cpu": cpu, "memory": now.rss_bytes, "processes": now.processes}
    if gpus:
        line["gpus"] = [gpu.to_data() for gpu in gpus]
    return line


class SystemSampler:
    """Samples the processes below root (the agent: every process of its command) and the run's GPUs."""

    def __init__(
        self,
        root: int,
        env: Mapping[str, str],
        *,
        proc: Path = Path("/proc"),
        gpus: Callable[[Mapping[str, str]], list[GpuSample]] = read_gpus,
    ) -> None:
        self._root, self._env, self._proc, self._gpus = root, env, proc, gpus
        self._before: tuple[float, Usage] | None = None

    def sample(self, time: float) -> Line:
        now = usage(descendants(self._root, read_stats(self._proc)))
        before, elapsed = None, None
        if self._before is not None:
            elapsed = time - self._before[0]
            before = self._before[1]
        self._before = (time, now)
        return system_line(time, now, before, elapsed, self._gpus(self._env))
