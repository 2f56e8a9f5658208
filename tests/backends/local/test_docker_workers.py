"""Multi-worker runs on the docker backend: a container per worker on the run's own network, reaching
each other by name; all or nothing; no container and no network left behind."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, process_exists, status_of, store_dir, submitted_run, wait_for

Runner = Callable[..., Result]
Job = Callable[..., Path]
SCRIPT = Path(__file__).parents[2] / "support" / "workers_job.py"

pytestmark = pytest.mark.usefixtures("docker_client", "no_leftover_containers")


@pytest.fixture
def workers_job(job: Job, python_base_image: str) -> Callable[..., Path]:
    def make(name: str, mode: str = "") -> Path:
        path = job(
            name,
            image={"base": python_base_image},
            command=["python", "workers_job.py"],
            workers=2,
            env={"WORKERS_MODE": mode},
        )
        shutil.copy(SCRIPT, path.parent / "workers_job.py")
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)  # a fresh image: built, never stale
        return path

    return make


def left_of(docker_client: Any, run: str) -> tuple[list[Any], list[Any]]:
    """The run's containers and networks still on the engine."""
    label = {"label": f"runner.dev/run={run}"}
    return docker_client.containers.list(all=True, filters=label), docker_client.networks.list(filters=label)


def test_two_containers_reach_each_other_by_name(
    runner: Runner, workers_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    result = runner("submit", "--backend", "docker", str(workers_job("pair")), timeout=600)
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert f"[{run}] [worker 0] worker 0 of 2 at worker-0:2222" in result.stdout
    assert f"[{run}] [worker 1] heard: hello from worker 0" in result.stdout
    store = store_dir(home, "pair", run)
    assert (store / "outputs" / "worker-0.txt").read_text() == "hello from worker 1\n"
    assert (store / "workers" / "1" / "outputs" / "worker-1.txt").read_text() == "hello from worker 0\n"
    assert status_of(run)["workers"] == 2
    assert left_of(docker_client, run) == ([], [])


def test_a_crashing_container_stops_the_other_and_nothing_is_left(
    runner: Runner, workers_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    result = runner("submit", "--backend", "docker", str(workers_job("crash", "crash")), timeout=600)
    assert result.code == 3, result.output
    run = submitted_run(result)
    doc = status_of(run)
    assert (doc["state"], doc["exitCode"]) == ("failed", 3)
    assert "worker 1 failed first" in doc["message"]
    store = store_dir(home, "crash", run)
    assert "worker 0 of 2" in (store / "logs" / "attempt-1.log").read_text()
    assert "worker 1 crashes" in (store / "workers" / "1" / "logs" / "attempt-1.log").read_text()
    assert left_of(docker_client, run) == ([], [])


def test_a_killed_supervisor_leaves_no_container_and_no_network(
    runner: Runner, workers_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    submitted = runner(
        "submit", "-d", "--backend", "docker", str(workers_job("orphans", "sleep")), timeout=600
    )
    assert submitted.code == 0, submitted.output
    run = submitted.stdout.strip()
    wait_for(lambda: "worker 1 of 2" in runner("logs", run).stdout, 120, "both containers to start")
    assert len(left_of(docker_client, run)[1]) == 1  # the run's network, while it runs
    with sqlite3.connect(home / "runs.db") as db:
        (supervisor,) = db.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run,)).fetchone()
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    assert status_of(run)["state"] == "lost"
    assert left_of(docker_client, run) == ([], [])
    assert (
        "worker 1 of 2"
        in (store_dir(home, "orphans", run) / "workers" / "1" / "logs" / "attempt-1.log").read_text()
    )
