"""`runner wait` for scripts after `runner submit -d`, through the real command on the process backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result

Runner = Callable[..., Result]


def detached(runner: Runner, path: Path) -> str:
    submitted = runner("submit", "-d", "--backend", "process", str(path))
    assert submitted.code == 0, submitted.output
    return submitted.stdout.strip()


def test_wait_gives_each_runs_state_and_the_worst_exit_code(runner: Runner, job: Callable[..., Path]) -> None:
    good = detached(runner, job("good", command=["true"]))
    bad = detached(runner, job("bad", command=["sh", "-c", "exit 3"]))

    waited = runner("wait", good, bad, timeout=120)
    assert waited.code == 3, waited.output
    assert waited.stdout.splitlines() == [f"run {good} succeeded", f"run {bad} failed"]
    assert runner("wait", good).code == 0


def test_wait_for_launched_returns_while_the_job_runs(
    runner: Runner, job: Callable[..., Path], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    run = detached(runner, job("held", command=["sh", "-c", f"until [ -e {release} ]; do sleep 0.05; done"]))

    launched = runner("wait", "--for", "launched", run, timeout=120)
    assert launched.code == 0, launched.output
    assert launched.stdout.split()[2] in ("pending", "running")
    release.touch()
    assert runner("wait", run, timeout=120).stdout == f"run {run} succeeded\n"


def test_a_wait_that_times_out_says_where_the_run_is_and_exits_1(
    runner: Runner, job: Callable[..., Path], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    run = detached(runner, job("slow", command=["sh", "-c", f"until [ -e {release} ]; do sleep 0.05; done"]))
    try:
        waited = runner("wait", "--timeout", "1s", run, timeout=120)
        assert waited.code == 1, waited.output
        assert f"timed out after 1s waiting for run {run} to be finished" in waited.stderr
        assert "Traceback" not in waited.output
    finally:
        release.touch()
    assert runner("wait", run, timeout=120).code == 0


def test_waiting_for_a_run_that_does_not_exist_is_an_error(runner: Runner) -> None:
    waited = runner("wait", "nothing-here")
    assert waited.code != 0
    assert "no run or job named 'nothing-here'" in waited.stderr
