"""Retention and `latest` through the real CLI on the process backend: the supervisor keeps the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.backends.local.attempts import retention_of
from runner.errors import UserError
from runner.store import FileStore
from runner.store.latest import read_latest
from runner.store.retention import RetentionPolicy
from tests.conftest import Result, status_of, submitted_run


def test_keep_last_two_of_three_submits_leaves_two_runs_and_latest_on_the_newest(
    home: Path, job: Callable[..., Path], runner: Callable[..., Result]
) -> None:
    manifest = job(
        "tidy",
        command=["sh", "-c", 'echo "$RUNNER_RUN_ID" > "$RUNNER_OUTPUTS/who"'],
        retention={"keepLast": 2},
    )
    runs = []
    for _ in range(3):
        result = runner("submit", str(manifest))
        assert result.code == 0, result.output
        runs.append(submitted_run(result))
    store = FileStore(home / "store")
    kept = {path.name for path in (home / "store" / "tidy").iterdir() if path.is_dir()}
    assert kept == set(runs[1:])
    assert read_latest(store, "tidy") == runs[2]
    assert store.get_bytes(f"tidy/{runs[2]}/outputs/who") == f"{runs[2]}\n".encode()
    assert status_of(runs[2])["message"] == f"succeeded; retention deleted 1 old run: {runs[0]}"


def test_a_failed_run_keeps_latest_on_the_last_success(
    home: Path, job: Callable[..., Path], runner: Callable[..., Result]
) -> None:
    good = runner("submit", str(job("flaky", command=["true"])))
    assert good.code == 0, good.output
    bad = runner("submit", str(job("flaky", command=["sh", "-c", "exit 4"])))
    assert bad.code == 4, bad.output
    assert read_latest(FileStore(home / "store"), "flaky") == submitted_run(good)


def test_retention_is_read_from_the_resolved_manifest() -> None:
    assert retention_of("spec:\n  retention:\n    keepLast: 2\n    keepDays: 7\n") == RetentionPolicy(2, 7)
    assert retention_of("spec:\n  retention: null\n") is None
    assert retention_of("spec:\n  command: [x]\n") is None
    assert retention_of("kind: Job\n") is None
    with pytest.raises(UserError, match="unknown rule 'keep'"):
        retention_of("spec:\n  retention: {keep: 1}\n")
