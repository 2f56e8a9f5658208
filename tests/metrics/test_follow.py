"""Following a run's telemetry on a fake clock: read, sleep, read again, until the run is final."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from runner.config import load_settings
from runner.records import RunRecord, RunState
from runner.service.metrics import FOLLOW_POLL_SECONDS, follow_telemetry, read_telemetry
from runner.service.runs import RunService
from tests.support.fakes import FakeClock


def record(workdir: Path, state: RunState) -> RunRecord:
    return RunRecord(
        id="train-abc123",
        job="train",
        backend="process",
        state=state,
        created=0.0,
        workdir=str(workdir),
        store_url=(workdir / "store").as_uri(),
        manifest="",
    )


def epoch(number: int) -> str:
    return json.dumps({"kind": "epoch", "epoch": number, "metrics": {"loss": 1 / number}}) + "\n"


def test_a_followed_run_is_read_every_poll_until_it_is_final(home: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "outputs" / "telemetry" / "training.jsonl"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(epoch(1))
    clock = FakeClock()
    runs = RunService(load_settings(), clock=clock)
    running = record(tmp_path, RunState.RUNNING)
    reads = iter([running, replace(running, state=RunState.SUCCEEDED)])

    def current() -> RunRecord:
        metrics.write_text(metrics.read_text() + epoch(len(metrics.read_text().splitlines()) + 1))
        return next(reads)

    seen = [len(snapshot.training) for snapshot in follow_telemetry(runs, running, current=current)]
    assert seen == [1, 2, 3]  # the last read comes after the run is seen final
    assert clock.sleeps == [FOLLOW_POLL_SECONDS, FOLLOW_POLL_SECONDS]


def test_a_run_with_neither_work_directory_nor_stored_telemetry_has_none(home: Path, tmp_path: Path) -> None:
    runs = RunService(load_settings(), clock=FakeClock())
    snapshot = read_telemetry(runs, record(tmp_path / "gone", RunState.SUCCEEDED))
    assert snapshot.training == [] and snapshot.system == []


def test_once_the_work_directory_is_gone_telemetry_is_read_from_the_store(home: Path, tmp_path: Path) -> None:
    stored = tmp_path / "gone" / "store" / "train" / "train-abc123" / "outputs" / "telemetry"
    stored.mkdir(parents=True)
    (stored / "training.jsonl").write_text(epoch(1) + epoch(2))
    (stored / "system.jsonl").write_text('{"time": 1.0, "cpu": 99.0, "memory": 1, "processes": 1}\n')
    runs = RunService(load_settings(), clock=FakeClock())
    snapshot = read_telemetry(runs, record(tmp_path / "gone", RunState.SUCCEEDED))
    assert [line["epoch"] for line in snapshot.training] == [1, 2]
    assert snapshot.system[0]["cpu"] == 99.0
