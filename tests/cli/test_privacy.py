"""What a run leaves on this machine is private to its owner: the run records and the store's files."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_records_and_the_stored_run_are_private(
    runner: Callable[..., Result], home: Path, job: Callable[..., Path]
) -> None:
    path = job("private", command=["sh", "-c", "echo secret > $RUNNER_OUTPUTS/a"])
    result = runner("submit", str(path))
    assert result.code == 0, result.output

    assert mode_of(home / "runs.db") == 0o600
    stored = list((home / "store" / "private").iterdir())
    (run_dir,) = [entry for entry in stored if entry.is_dir()]
    files = [entry for entry in run_dir.rglob("*") if entry.is_file()]
    assert {entry.name for entry in files} >= {"job.yaml", "run.json", "MANIFEST.json", "a"}
    assert {oct(mode_of(entry)) for entry in files} == {oct(0o600)}
    assert mode_of(home / "store") == 0o700
