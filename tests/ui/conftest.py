"""Fixtures for the dashboard: runs of a stand-in training job on the process backend, and the app."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runner.config import load_settings
from runner.service.runs import RunService
from runner.ui.app import create_app
from runner.ui.context import Dashboard
from tests.conftest import run_runner, submitted_run, wait_for_state, write_job

TRAINING = Path(__file__).with_name("training.py")


@dataclass(frozen=True)
class Training:
    run: str
    marks: Path

    def epoch(self, number: int) -> None:
        """Let the job end epoch number."""
        (self.marks / f"epoch-{number}").touch()


StartTraining = Callable[..., Training]


@pytest.fixture
def start_training(home: Path, tmp_path: Path) -> StartTraining:
    """Submit the stand-in training job (detached); with waiting=False it runs all its epochs at once."""

    def start(name: str = "train", *, epochs: int = 3, waiting: bool = True) -> Training:
        context = tmp_path / "jobs" / name
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy(TRAINING, context / "training.py")
        marks = tmp_path / "marks" / name
        marks.mkdir(parents=True, exist_ok=True)
        manifest = write_job(
            context, name, command=["python", "training.py", str(marks) if waiting else "-", str(epochs)]
        )
        submitted = run_runner("submit", str(manifest), "--detach")
        assert submitted.code == 0, submitted.output
        return Training(submitted_run(submitted), marks)

    return start


@pytest.fixture
def finished_training(start_training: StartTraining) -> str:
    training = start_training("done", waiting=False)
    wait_for_state(training.run, "succeeded")
    return training.run


def dashboard(**options: Any) -> TestClient:
    """A test client of the dashboard over the current RUNNER_HOME; options go to create_app."""
    board = Dashboard(
        runs=lambda: RunService(load_settings()), schedules=options.pop("schedules", lambda: [])
    )
    return TestClient(create_app(board, **options))
