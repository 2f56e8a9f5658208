"""A local run's work directory under RUNNER_HOME/runs/<run-id>, and where each of its workers writes.

Worker 0 (every single-worker run's only one) keeps the directory's own outputs/ and logs/; a worker
i >= 1 of a multi-worker run writes under workers/<i>/, the same area its files take in the store
(runner.workers.worker_area), so collection and `runner logs` map one onto the other by index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runner.workers import count_of, worker_area


class WorkDir:
    """A local run's directory under RUNNER_HOME/runs/<run-id> (or one worker's area inside it)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, attempt: int) -> Path:
        return self.logs / f"attempt-{attempt}.log"

    def exit_file(self, attempt: int) -> Path:
        """Where the process backend's wrapper writes the attempt's exit code when its command ends."""
        return self.root / f"attempt-{attempt}.exit"

    def worker(self, index: int) -> WorkDir:
        """Worker index's outputs, logs and exit files: this directory's own for worker 0, the chief,
        so that a single-worker run's layout is what it always was; workers/<index>/ for the others.
        The context is shared: every worker runs the same code (use this directory's context)."""
        return self if index == 0 else WorkDir(self.root / worker_area(index))


def worker_count(launch: Mapping[str, object]) -> int:
    """How many workers a local run has, from its record's launch details (1 for records made before
    multi-worker runs existed, which have no `workers`)."""
    return count_of(launch.get("workers", 1)) or 1
