"""The agent's telemetry: RUNNER_METRICS for the command, system samples, live uploads to the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from runner.agent.telemetry import UPLOAD_BYTES, Telemetry
from runner.metrics import TRAINING_PATH
from runner.metrics.lines import Line, parse
from runner.metrics.system import SystemSampler
from runner.store import open_store
from tests.conftest import wait_for

JOB, RUN = "mnist", "mnist-k3x9q2"


class Samples(SystemSampler):
    def __init__(self) -> None:
        self.taken = 0

    def sample(self, time: float) -> Line:
        self.taken += 1
        return {"time": time, "cpu": 50.0, "memory": 1024, "processes": 1}


class FailingStore:
    def __init__(self) -> None:
        self.tries = 0

    def put_bytes(self, key: str, data: bytes) -> Any:
        self.tries += 1
        raise OSError("the store is down")


class Clock:
    def __init__(self) -> None:
        self.now = 123.0

    def __call__(self) -> float:
        return self.now


def telemetry(tmp_path: Path, store: Any, warnings: list[str], clock: Clock | None = None) -> Telemetry:
    return Telemetry(
        outputs=tmp_path / "outputs",
        job=JOB,
        run_id=RUN,
        store=store,
        interval=5.0,
        sampler=Samples(),
        clock=clock or Clock(),
        warn=warnings.append,
    )


def test_each_tick_samples_and_uploads_what_changed(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    warnings: list[str] = []
    clock = Clock()
    live = telemetry(tmp_path, store, warnings, clock)
    assert live.environment() == {"RUNNER_METRICS": str(tmp_path / "outputs/telemetry/training.jsonl")}
    live.tick()
    stored = tmp_path / "store" / JOB / RUN / "outputs" / "telemetry"
    assert parse((stored / "system.jsonl").read_text()) == [
        {"time": 123.0, "cpu": 50.0, "memory": 1024, "processes": 1}
    ]
    assert not (stored / "training.jsonl").exists()  # the job has written nothing yet
    live.training.write_text('{"kind": "epoch", "epoch": 1, "metrics": {"loss": 1.0}}\n')
    clock.now += 5.0
    live.tick()
    assert (stored / "training.jsonl").read_text() == live.training.read_text()
    assert len(parse((stored / "system.jsonl").read_text())) == 2
    assert warnings == []


def test_a_big_file_is_uploaded_less_often_and_whole_at_the_end(tmp_path: Path) -> None:
    store = Uploads()
    clock = Clock()
    live = telemetry(tmp_path, store, [], clock)
    live.training.parent.mkdir(parents=True, exist_ok=True)
    live.training.write_bytes(b"x" * (UPLOAD_BYTES * 4))  # four times the bytes: every fourth tick
    uploads = []
    for _ in range(8):
        live.tick()
        uploads.append(store.sizes.get(TRAINING_PATH, 0))
        live.training.write_bytes(live.training.read_bytes() + b"y")
        clock.now += 5.0
    assert [size > 0 for size in uploads] == [True] * 8
    assert len(set(uploads)) == 2  # the first tick, then 20 s later
    live.stop()
    assert store.sizes[TRAINING_PATH] == live.training.stat().st_size


class Uploads:
    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def put_bytes(self, key: str, data: bytes) -> None:
        self.sizes[key.split("/outputs/", 1)[1]] = len(data)


def test_a_store_that_is_down_is_said_once_and_never_stops_the_run(tmp_path: Path) -> None:
    store = FailingStore()
    warnings: list[str] = []
    live = telemetry(tmp_path, store, warnings)
    for _ in range(3):
        live.tick()
    live.stop()
    assert store.tries == 4
    assert warnings == ["cannot upload the run's live metrics: the store is down"]
    assert len(parse(live.system.read_text())) == 3  # sampling went on


def agent_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    env.update(
        RUNNER_STORE=(tmp_path / "store").as_uri(),
        RUNNER_JOB=JOB,
        RUNNER_RUN_ID=RUN,
        RUNNER_OUTPUTS=str(tmp_path / "outputs"),
        RUNNER_GRACE="1",
        **extra,
    )
    return env


TRAIN = """
import json, os, pathlib, sys, time
path = pathlib.Path(os.environ["RUNNER_METRICS"])
path.parent.mkdir(parents=True, exist_ok=True)
with path.open("a") as out:
    out.write(json.dumps({"kind": "epoch", "epoch": 1, "metrics": {"loss": 0.5}}) + "\\n")
go = pathlib.Path(sys.argv[1])
while not go.exists():
    sum(range(10000))  # busy: the samples see its CPU
"""


def test_a_running_command_s_metrics_reach_the_store_before_it_ends(tmp_path: Path) -> None:
    go = tmp_path / "go"
    agent = subprocess.Popen(
        [sys.executable, "-m", "runner.agent", "--", sys.executable, "-c", TRAIN, str(go)],
        env=agent_env(tmp_path, RUNNER_METRICS_INTERVAL="0.2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stored = tmp_path / "store" / JOB / RUN / "outputs" / "telemetry"
    try:
        wait_for((stored / "training.jsonl").exists, timeout=30, what="live training metrics")
        wait_for(
            lambda: any(line.get("cpu") for line in parse(_text(stored / "system.jsonl"))),
            timeout=30,
            what="a system sample with the command's CPU",
        )
        assert not (tmp_path / "store" / JOB / RUN / "MANIFEST.json").exists()  # still running
    finally:
        go.touch()
        _, stderr = agent.communicate(timeout=60)
    assert agent.returncode == 0, stderr.decode()
    manifest = json.loads((tmp_path / "store" / JOB / RUN / "MANIFEST.json").read_text())
    paths = {entry["path"] for entry in manifest["files"]}
    assert {"outputs/telemetry/training.jsonl", "outputs/telemetry/system.jsonl"} <= paths
    samples = parse((stored / "system.jsonl").read_text())
    assert all(sample["memory"] > 0 and sample["processes"] >= 1 for sample in samples)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
