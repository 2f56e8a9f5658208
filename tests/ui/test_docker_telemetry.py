"""Telemetry on the docker backend: the agent in the container samples the run and the job's metrics
land in the outputs mount, so `runner metrics` and the dashboard see a container run while it trains."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from runner.config import load_settings
from runner.metrics.lines import epochs
from runner.service.metrics import Telemetry, read_telemetry
from runner.service.runs import RunService
from tests.conftest import run_runner, store_dir, submitted_run, wait_for, wait_for_state, write_job
from tests.ui.conftest import TRAINING

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_client", "no_leftover_containers")]


def test_a_container_run_s_metrics_and_samples_are_seen_while_it_trains(
    home: Path, tmp_path: Path, python_base_image: str, docker_client: Any
) -> None:
    context = tmp_path / "jobs" / "boxed"
    context.mkdir(parents=True)
    shutil.copy(TRAINING, context / "training.py")
    (context / "nonce.txt").write_text(uuid.uuid4().hex)
    marks = tmp_path / "marks"
    marks.mkdir()
    manifest = write_job(
        context,
        "boxed",
        image={"base": python_base_image},
        command=["python", "training.py", "/marks", "2"],
        inputs=[{"name": "marks", "source": str(marks), "path": "/marks"}],
    )
    submitted = run_runner("submit", str(manifest), "--backend", "docker", "--detach")
    assert submitted.code == 0, submitted.output
    run = submitted_run(submitted)
    wait_for_state(run, "running", timeout=120)
    (marks / "epoch-1").touch()
    runs = RunService(load_settings())

    def live() -> Telemetry:
        return read_telemetry(runs, runs.get(run))

    wait_for(lambda: len(epochs(live().training)) == 1, timeout=60, what="the first epoch from the container")
    wait_for(lambda: live().system, timeout=60, what="a system sample from the agent")
    shown = run_runner("metrics", run, "-o", "json")
    data = json.loads(shown.stdout)
    assert data["state"] == "running" and len(data["epochs"]) == 1
    assert data["system"]["memory"] > 0 and data["system"]["processes"] >= 1
    (marks / "epoch-2").touch()
    wait_for_state(run, "succeeded", timeout=120)
    wait_for(
        lambda: not docker_client.containers.list(all=True, filters={"label": f"runner.dev/run={run}"}),
        timeout=60,
        what="the run's container to be removed",
    )
    stored = store_dir(home, "boxed", run) / "outputs" / "telemetry"
    assert (stored / "training.jsonl").exists() and (stored / "system.jsonl").exists()
