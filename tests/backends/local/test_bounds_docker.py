"""Issue 11 on the docker backend, through the real `runner` command and engine: the image build refuses
special files and oversized contexts before anything exists (item 12), and a container that exited
after its supervisor died keeps its exit code and whole log (item 18)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backends.local.test_bounds import nothing_of_the_run
from tests.conftest import Result, process_exists, store_dir, wait_for, wait_for_state

Runner = Callable[..., Result]
Job = Callable[..., Path]

pytestmark = pytest.mark.usefixtures("docker_client", "no_leftover_containers")


@pytest.fixture
def small_job(job: Job, python_base_image: str) -> Callable[..., Path]:
    """A job on the small python base image, with a fresh context (so a fresh image tag)."""

    def make(name: str, script: str, **spec: Any) -> Path:
        path = job(name, image={"base": python_base_image}, command=["sh", "-c", script], **spec)
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)
        return path

    return make


def containers_of(docker_client: Any, run: str) -> list[Any]:
    return list(docker_client.containers.list(all=True, filters={"label": f"runner.dev/run={run}"}))


def test_a_fifo_in_the_context_is_refused_before_the_build(
    runner: Runner, small_job: Callable[..., Path], home: Path
) -> None:
    path = small_job("piped", "echo hi")
    os.mkfifo(path.parent / "pipe")
    result = runner("submit", "--backend", "docker", str(path), timeout=120)
    assert result.code == 2, result.output
    assert f"{path.parent / 'pipe'} is a FIFO (named pipe)" in result.stderr
    assert "Traceback" not in result.output
    nothing_of_the_run(home)


def test_a_context_over_the_cap_is_refused_before_the_build(
    runner: Runner, small_job: Callable[..., Path], home: Path
) -> None:
    path = small_job("heavy", "echo hi")
    with (path.parent / "data.bin").open("wb") as data:
        data.truncate(3 * 2**20)
    result = runner(
        "submit", "--backend", "docker", str(path), env={"RUNNER_MAX_CONTEXT": "2Mi"}, timeout=120
    )
    assert result.code == 2, result.output
    assert "holds more than 2.0 MiB (RUNNER_MAX_CONTEXT)" in result.stderr
    assert "building" not in result.stderr.lower()
    nothing_of_the_run(home)


@pytest.mark.parametrize(("code", "state"), [(0, "succeeded"), (3, "failed")])
def test_a_container_that_exited_after_its_supervisor_died_keeps_its_outcome_and_log(
    runner: Runner,
    small_job: Callable[..., Path],
    home: Path,
    docker_client: Any,
    tmp_path: Path,
    *,
    code: int,
    state: str,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    script = (
        "echo up; while [ ! -e /gate/go ]; do sleep 0.05; done; echo after the supervisor died; "
        f'echo out > "$RUNNER_OUTPUTS/out"; exit {code}'
    )
    path = small_job("survivor", script, inputs=[{"name": "gate", "source": str(gate), "path": "/gate"}])
    submitted = runner("submit", "-d", "--backend", "docker", str(path))
    assert submitted.code == 0, submitted.output[-3000:]
    run = submitted.stdout.strip()
    wait_for(lambda: "up" in runner("logs", run).stdout, 120, "the container to start")
    with sqlite3.connect(home / "runs.db") as db:
        (supervisor,) = db.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run,)).fetchone()
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    (gate / "go").touch()

    def exited() -> bool:
        containers = containers_of(docker_client, run)
        for container in containers:
            container.reload()
        return bool(containers) and all(container.status == "exited" for container in containers)

    wait_for(exited, 60, "the container to exit by itself")
    doc = wait_for_state(run, "succeeded", "failed", "lost")
    assert (doc["state"], doc["exitCode"]) == (state, code), doc
    assert "supervisor stopped unexpectedly; the exit code is from its container" in doc["message"]
    assert "after the supervisor died" in runner("logs", run).stdout  # saved from the container
    stored = store_dir(home, "survivor", run)
    assert "after the supervisor died" in (stored / "logs/attempt-1.log").read_text()
    files = {entry["path"] for entry in json.loads((stored / "MANIFEST.json").read_text())["files"]}
    assert "outputs/out" in files
    assert containers_of(docker_client, run) == []
