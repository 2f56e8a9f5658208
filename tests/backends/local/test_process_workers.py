"""Multi-worker runs on the process backend: real processes on local ports that find each other."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from runner.backends.local.procs import marked_processes
from tests.conftest import Result, status_of, store_dir, submitted_run, wait_for, wait_for_state

Runner = Callable[..., Result]
Job = Callable[..., Path]
SCRIPT = Path(__file__).parents[2] / "support" / "workers_job.py"


def workers_job(job: Job, name: str, mode: str = "", **spec: object) -> Path:
    path = job(name, command=["python", "workers_job.py"], workers=2, env={"WORKERS_MODE": mode}, **spec)
    shutil.copy(SCRIPT, path.parent / "workers_job.py")
    return path


def test_two_workers_find_each_other_and_are_collected(runner: Runner, job: Job, home: Path) -> None:
    result = runner("submit", str(workers_job(job, "pair")))
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert f"[{run}] [worker 1] heard: hello from worker 0" in result.stdout
    assert f"[{run}] [worker 0] heard: hello from worker 1" in result.stdout
    store = store_dir(home, "pair", run)
    assert (store / "outputs" / "worker-0.txt").read_text() == "hello from worker 1\n"
    assert (store / "workers" / "1" / "outputs" / "worker-1.txt").read_text() == "hello from worker 0\n"
    assert (store / "workers" / "1" / "logs" / "attempt-1.log").exists()
    assert json.loads((store / "MANIFEST.json").read_text())["workers"] == 2
    assert status_of(run)["workers"] == 2
    both = runner("logs", run)
    assert both.code == 0, both.output
    lines = both.stdout.splitlines()
    assert "[worker 0] heard: hello from worker 1" in lines
    assert "[worker 1] heard: hello from worker 0" in lines
    assert all(line.startswith(("[worker 0] ", "[worker 1] ")) for line in lines)
    one = runner("logs", run, "--worker", "1")
    assert one.code == 0, one.output
    assert one.stdout == "worker 1 of 2 at " + one.stdout.split(" at ", 1)[1]
    assert "heard: hello from worker 0" in one.stdout and "worker 0 of" not in one.stdout
    beyond = runner("logs", run, "--worker", "2")
    assert beyond.code != 0 and "has no worker 2: it has workers 0 to 1" in beyond.stderr


def test_a_crashing_worker_stops_the_other_and_fails_the_run(runner: Runner, job: Job, home: Path) -> None:
    result = runner("submit", str(workers_job(job, "crash", "crash")))
    assert result.code == 3, result.output
    run = submitted_run(result)
    doc = status_of(run)
    assert (doc["state"], doc["exitCode"]) == ("failed", 3)
    assert "worker 1 failed first" in doc["message"]
    store = store_dir(home, "crash", run)
    assert "worker 0 of 2" in (store / "logs" / "attempt-1.log").read_text()
    assert "worker 1 crashes" in (store / "workers" / "1" / "logs" / "attempt-1.log").read_text()
    assert marked_processes("RUNNER_RUN_ID", run) == []


def test_a_retry_restarts_both_workers(runner: Runner, job: Job, home: Path) -> None:
    result = runner("submit", str(workers_job(job, "again", "crash-once", retries=1)))
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert status_of(run)["attempts"] == 2
    store = store_dir(home, "again", run)
    for area in (store, store / "workers" / "1"):
        assert {path.name for path in (area / "logs").iterdir()} == {"attempt-1.log", "attempt-2.log"}
    assert (store / "workers" / "1" / "outputs" / "worker-1.txt").exists()


def test_cancel_leaves_no_worker_running(runner: Runner, job: Job, home: Path) -> None:
    submitted = runner("submit", "--detach", str(workers_job(job, "nap", "sleep")))
    assert submitted.code == 0, submitted.output
    run = submitted.stdout.strip()
    wait_for_state(run, "running")
    wait_for(lambda: len(marked_processes("RUNNER_RUN_ID", run)) >= 2, what="both workers")
    wait_for(lambda: "worker 1 of 2" in runner("logs", run).stdout, what="worker 1's first line")
    cancelled = runner("cancel", run)
    assert cancelled.code == 0, cancelled.output
    assert status_of(run)["state"] == "cancelled"
    assert marked_processes("RUNNER_RUN_ID", run) == []
    assert (store_dir(home, "nap", run) / "workers" / "1" / "logs" / "attempt-1.log").exists()


def test_each_worker_holds_its_own_gpus(
    runner: Runner, job: Job, home: Path, fake_gpus: Callable[..., None]
) -> None:
    fake_gpus(4)
    command = ["sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES" > "$RUNNER_OUTPUTS/devices"']
    result = runner("submit", str(job("gpus", command=command, workers=2, resources={"gpu": 2})))
    assert result.code == 0, result.output
    store = store_dir(home, "gpus", submitted_run(result))
    assert (store / "outputs" / "devices").read_text() == "0,1\n"
    assert (store / "workers" / "1" / "outputs" / "devices").read_text() == "2,3\n"
    too_many = runner("submit", str(job("greedy", command=command, workers=3, resources={"gpu": 2})))
    assert too_many.code != 0
    assert "asks for 2 GPU(s) for each of its 3 workers" in too_many.stderr
    assert "lower spec.resources.gpu or spec.workers" in too_many.stderr
