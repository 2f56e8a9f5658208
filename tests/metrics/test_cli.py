"""`runner metrics RUN [-f] [-o json]` over real runs of a stand-in training job (process backend)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_runner, runner_command, submitted_run, wait_for_state, write_job
from tests.ui.conftest import StartTraining


def test_a_finished_run_shows_its_latest_values_and_a_row_per_epoch(
    home: Path, finished_training: str
) -> None:
    shown = run_runner("metrics", finished_training)
    assert shown.code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"run {finished_training} (succeeded): epoch 3 of 3"
    assert lines[1] == "latest: loss 0.3333  val_loss 0.3667  accuracy 0.8333"
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["EPOCH", "LOSS", "VAL_LOSS", "ACCURACY"]
    assert [row.split() for row in table[1:]] == [
        ["1", "1", "1.1", "0.5"],
        ["2", "0.5", "0.55", "0.75"],
        ["3", "0.3333", "0.3667", "0.8333"],
    ]


def test_json_has_the_epochs_and_the_latest_values(home: Path, finished_training: str) -> None:
    shown = run_runner("metrics", "done", "-o", "json")  # a job name: its latest run
    assert shown.code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["run"] == finished_training and data["state"] == "succeeded"
    assert data["epochsPlanned"] == 3
    assert [entry["epoch"] for entry in data["epochs"]] == [1, 2, 3]
    assert data["latest"]["loss"] == 1 / 3
    assert data["system"] is None  # the process backend takes no system samples


def test_follow_prints_epochs_as_they_end_until_the_run_ends(
    home: Path, start_training: StartTraining
) -> None:
    training = start_training("followed")
    wait_for_state(training.run, "running")
    follower = subprocess.Popen(
        runner_command("metrics", training.run, "-f"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    training.epoch(1)
    assert follower.stdout.readline().split() == ["EPOCH", "LOSS", "VAL_LOSS", "ACCURACY"]
    assert follower.stdout.readline().split()[0] == "1"
    training.epoch(2)
    assert follower.stdout.readline().split()[0] == "2"
    training.epoch(3)
    rest, errors = follower.communicate(timeout=60)
    assert follower.returncode == 0, errors
    assert rest.splitlines()[-2:] == [rest.splitlines()[-2], f"run {training.run} succeeded"]
    assert rest.splitlines()[-2].split()[0] == "3"


def test_a_run_without_metrics_says_how_a_job_writes_them(home: Path) -> None:
    manifest = write_job(home.parent / "plain", "plain")
    submitted = run_runner("submit", str(manifest))
    shown = run_runner("metrics", submitted_run(submitted))
    assert shown.code == 0, shown.output
    assert "has no training metrics yet: a job writes them to $RUNNER_METRICS" in shown.stdout


def test_an_unknown_run_is_an_error_without_a_traceback(home: Path) -> None:
    shown = run_runner("metrics", "nosuchrun")
    assert shown.code == 1
    assert "Traceback" not in shown.output and "nosuchrun" in shown.stderr
