"""The process backend's run is sampled too: its supervisor, the job's parent, writes the job's CPU and
memory into outputs/telemetry/system.jsonl, collected with the outputs, as the agent does in a container."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, write_job

BUSY = 'python -c "import time; t = time.time(); x = bytearray(64 << 20)\nwhile time.time() - t < 2: pass"'


def test_a_process_run_s_cpu_and_memory_are_sampled_and_collected(
    tmp_path: Path, home: Path, runner: Callable[..., Result]
) -> None:
    job = write_job(tmp_path / "job", name="busy", command=["sh", "-c", BUSY])
    result = runner("submit", str(job), env={"RUNNER_METRICS_INTERVAL": "0.25"})
    assert result.code == 0, result.output
    (system,) = (home / "store" / "busy").glob("busy-*/outputs/telemetry/system.jsonl")
    lines = [json.loads(line) for line in system.read_text().splitlines()]
    assert len(lines) >= 3  # two seconds at a quarter of a second
    rates = [line["cpu"] for line in lines if line["cpu"] is not None]
    assert max(rates) > 50  # the busy loop: most of a core, measured below the supervisor
    assert max(line["memory"] for line in lines) > 64 << 20  # the 64 MiB it holds
    assert "gpus" not in lines[0]  # no GPU here, no GPU readings


def test_no_samples_when_turned_off(tmp_path: Path, home: Path, runner: Callable[..., Result]) -> None:
    job = write_job(tmp_path / "job", name="quiet", command=["sh", "-c", "echo done"])
    result = runner("submit", str(job), env={"RUNNER_METRICS_INTERVAL": "0"})
    assert result.code == 0, result.output
    assert not list((home / "store").rglob("system.jsonl"))
