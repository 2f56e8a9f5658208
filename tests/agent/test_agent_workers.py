"""The agent in a multi-worker run: each worker's command is told its place; worker 0 collects the run,
the others only their own outputs and logs, under workers/<index>/ (as in an Indexed Job's pods)."""

from __future__ import annotations

import json
from pathlib import Path

from runner.store import open_store
from runner.store.collect import read_manifest

from .running import run_agent

ADDRESSES = "mw-0.mw:2222,mw-1.mw:2222"
SCRIPT = (
    'echo "$RUNNER_WORKER_INDEX of $RUNNER_WORKERS: $TF_CONFIG"; echo "$RANK" > "$RUNNER_OUTPUTS/rank.txt"'
)


def settings(store: Path, **more: str) -> dict[str, str]:
    return {
        "RUNNER_STORE": store.as_uri(),
        "RUNNER_JOB": "mw",
        "RUNNER_RUN_ID": "mw",
        "RUNNER_METRICS_INTERVAL": "0",
        "RUNNER_WORKER_ADDRESSES": ADDRESSES,
        **more,
    }


def test_each_worker_collects_its_own_part_and_the_chief_the_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    other = run_agent(tmp_path / "1", SCRIPT, settings(store, JOB_COMPLETION_INDEX="1"))
    assert other.returncode == 0, other.stderr
    told = json.loads(other.stdout.split(": ", 1)[1])
    assert told == {"cluster": {"worker": ADDRESSES.split(",")}, "task": {"type": "worker", "index": 1}}
    assert "worker 1 ended (exit code 0)" in other.stderr
    area = store / "mw/mw/workers/1"
    assert (area / "outputs/rank.txt").read_text() == "1\n"
    assert (area / "logs/attempt-1.log").read_text().startswith("1 of 2: ")
    assert not (store / "mw/mw/run.json").exists()  # only the chief writes the run's record

    chief = run_agent(tmp_path / "0", SCRIPT, settings(store, JOB_COMPLETION_INDEX="0"))
    assert chief.returncode == 0, chief.stderr
    assert json.loads((store / "mw/mw/run.json").read_text())["state"] == "succeeded"
    files = read_manifest(open_store(store.as_uri()), "mw", "mw")
    assert files is not None
    assert {"outputs/rank.txt", "workers/1/outputs/rank.txt", "workers/1/logs/attempt-1.log"} <= {
        entry.path for entry in files
    }


def test_a_bad_worker_setting_stops_the_agent_before_the_command(tmp_path: Path) -> None:
    done = run_agent(tmp_path, "touch ran", settings(tmp_path / "store"))
    assert done.returncode == 2
    assert "neither RUNNER_WORKER_INDEX nor JOB_COMPLETION_INDEX" in done.stderr
    assert not (tmp_path / "ran").exists()
