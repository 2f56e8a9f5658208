"""The docker backend end to end on the real engine: `runner submit --backend docker`, containers
built from the job image, outputs and logs collected, and nothing left behind."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    REPO,
    Result,
    make_malaria_cells,
    process_exists,
    runner_command,
    status_of,
    store_dir,
    submitted_run,
    wait_for,
)
from tests.jobs.formats import check_artifacts

Runner = Callable[..., Result]
Job = Callable[..., Path]

pytestmark = pytest.mark.usefixtures("docker_client", "no_leftover_containers")


@pytest.fixture
def small_job(job: Job, python_base_image: str) -> Callable[..., Path]:
    """A job on the small python base image (no TensorFlow), for the backend's mechanics."""

    def make(name: str, script: str, **spec: Any) -> Path:
        image = {"base": python_base_image, **spec.pop("image", {})}
        path = job(name, image=image, command=["sh", "-c", script], **spec)
        # a fresh context, hence a fresh image tag: the first submit in a test always builds
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)
        return path

    return make


def containers_of(docker_client: Any, run: str) -> list[Any]:
    return list(docker_client.containers.list(all=True, filters={"label": f"runner.dev/run={run}"}))


def test_a_job_runs_in_its_image_as_non_root_and_its_outputs_are_collected(
    runner: Runner, small_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    path = small_job(
        "boxed",
        'echo "uid=$(id -u) in $(pwd)"; echo "$GREETING"; echo 42 > "$RUNNER_OUTPUTS/answer.txt"',
        env={"GREETING": "hello from the container"},
        resources={"cpu": "500m", "memory": "256Mi"},
    )
    result = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    run = submitted_run(result)
    assert f"[{run}] uid=1000 in /job" in result.stdout
    assert f"[{run}] hello from the container" in result.stdout
    assert "built in" in result.stderr
    assert (store_dir(home, "boxed", run) / "outputs" / "answer.txt").read_text() == "42\n"
    summary = json.loads((store_dir(home, "boxed", run) / "run.json").read_text())
    assert (summary["backend"], summary["state"]) == ("docker", "succeeded")
    assert containers_of(docker_client, run) == []
    # the same job again: the image is reused, docker build is not called
    again = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert again.code == 0, again.output[-3000:]
    assert "unchanged, reused" in again.stderr
    assert "built in" not in again.stderr


def test_failing_timed_out_and_cancelled_runs_are_collected_and_leave_no_container(
    runner: Runner, small_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    failing = runner(
        "submit", "--backend", "docker", str(small_job("fails", "echo partial > $RUNNER_OUTPUTS/p; exit 3"))
    )
    assert failing.code == 3, failing.output[-3000:]
    run = submitted_run(failing)
    assert (store_dir(home, "fails", run) / "outputs" / "p").read_text() == "partial\n"
    assert containers_of(docker_client, run) == []

    slow = runner(
        "submit", "--backend", "docker", str(small_job("slow", "echo started; sleep 300", timeout="3s"))
    )
    assert slow.code == 124, slow.output[-3000:]
    run = submitted_run(slow)
    assert status_of(run)["state"] == "timed-out"
    log = (store_dir(home, "slow", run) / "logs" / "attempt-1.log").read_text()
    assert log.startswith("started\n")
    assert "runner: received SIGTERM; passing it on to the command" in log
    assert containers_of(docker_client, run) == []

    detached = runner(
        "submit", "-d", "--backend", "docker", str(small_job("cancelme", "echo working; sleep 300"))
    )
    run = detached.stdout.strip()
    wait_for(lambda: "working" in runner("logs", run).stdout, 120, "the container to start")
    assert runner("cancel", run).code == 0
    assert status_of(run)["state"] == "cancelled"
    assert containers_of(docker_client, run) == []
    assert (store_dir(home, "cancelme", run) / "MANIFEST.json").exists()


def test_ctrl_c_on_submit_cancels_and_removes_the_container(
    small_job: Callable[..., Path], docker_client: Any
) -> None:
    path = small_job("interrupted", "echo ready; sleep 300")
    process = subprocess.Popen(
        runner_command("submit", "--backend", "docker", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    assert "ready" in first
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    run = first.split("]")[0].lstrip("[")
    assert status_of(run)["state"] == "cancelled"
    assert containers_of(docker_client, run) == []


def test_a_killed_supervisor_leaves_no_container_behind(
    runner: Runner, small_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    run = runner(
        "submit", "-d", "--backend", "docker", str(small_job("orphan", "echo up; sleep 300"))
    ).stdout.strip()
    wait_for(lambda: "up" in runner("logs", run).stdout, 120, "the container to start")
    import os
    import sqlite3

    with sqlite3.connect(home / "runs.db") as db:
        (supervisor,) = db.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run,)).fetchone()
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    assert status_of(run)["state"] == "lost"
    assert containers_of(docker_client, run) == []


def test_a_symlink_out_of_the_outputs_is_refused(
    runner: Runner, small_job: Callable[..., Path], home: Path
) -> None:
    path = small_job("sneaky", 'ln -s /etc/passwd "$RUNNER_OUTPUTS/passwd"; echo ok > "$RUNNER_OUTPUTS/fine"')
    result = runner("submit", "--backend", "docker", str(path))
    assert result.code == 0, result.output[-3000:]
    run = submitted_run(result)
    summary = json.loads((store_dir(home, "sneaky", run) / "run.json").read_text())
    assert [item["path"] for item in summary["refused"]] == ["outputs/passwd"]
    assert (store_dir(home, "sneaky", run) / "outputs" / "fine").exists()


def test_inputs_are_mounted_read_only(runner: Runner, small_job: Callable[..., Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("input!")
    path = small_job(
        "reader",
        'cat "$RUNNER_INPUT_CELLS/x.txt"; echo; touch "$RUNNER_INPUT_CELLS/y" 2>/dev/null || echo read-only',
        inputs=[{"name": "cells", "source": str(data), "path": "/data/cells"}],
    )
    result = runner("submit", "--backend", "docker", str(path))
    assert result.code == 0, result.output[-3000:]
    assert "input!" in result.stdout and "read-only" in result.stdout


def test_build_failures_show_the_step_and_leave_nothing(
    runner: Runner, small_job: Callable[..., Path], docker_client: Any, job: Job
) -> None:
    before = {container.id for container in docker_client.containers.list(all=True)}
    missing_base = runner(
        "submit", "--backend", "docker", str(job("nobase", image={"base": "no-such/base:1"}))
    )
    assert missing_base.code != 0
    assert "no-such/base:1" in missing_base.stderr and "Traceback" not in missing_base.stderr
    path = small_job("badreq", "true", image={"requirements": ["no-such-package-xyz==1.0"]})
    broken = runner("submit", "--backend", "docker", str(path))
    assert broken.code != 0
    assert "no-such-package-xyz" in broken.stderr and "Traceback" not in broken.stderr
    assert {container.id for container in docker_client.containers.list(all=True)} == before
    runs = runner("list", "-o", "name").stdout.split()
    assert sorted(run.rsplit("-", 1)[0] for run in runs) == ["badreq", "nobase"], "each is a run, failed"
    for run in runs:
        assert status_of(run)["state"] == "failed"
        assert status_of(run)["message"].startswith("its build failed: ")
    badreq = next(run for run in runs if run.startswith("badreq-"))
    assert "no-such-package-xyz" in runner("logs", badreq).stdout, "its build log is in the store"


@pytest.mark.tensorflow
def test_the_three_examples_train_in_containers(
    runner: Runner, tmp_path: Path, home: Path, tensorflow_base_image: str, example_wheelhouse: Path
) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_wheelhouse, jobs / "wheelhouse")
    mnist = runner("submit", "--backend", "docker", str(jobs / "mnist" / "job.yaml"), timeout=1200)
    assert mnist.code == 0, mnist.output[-4000:]
    run = submitted_run(mnist)
    check_artifacts(store_dir(home, "mnist", run) / "outputs", ["keras", "h5", "savedmodel", "onnx"])

    cells = make_malaria_cells(tmp_path / "cells", 40)
    malaria = runner(
        "submit",
        "--backend",
        "docker",
        str(jobs / "malaria" / "job.yaml"),
        "--input",
        f"cells={cells}",
        timeout=1200,
    )
    assert malaria.code == 0, malaria.output[-4000:]
    run = submitted_run(malaria)
    check_artifacts(store_dir(home, "malaria", run) / "outputs", ["keras", "h5", "savedmodel", "onnx"])

    regression = runner("submit", "--backend", "docker", str(jobs / "regression" / "job.yaml"), timeout=1200)
    assert regression.code == 0, regression.output[-4000:]
    run = submitted_run(regression)
    check_artifacts(store_dir(home, "regression", run) / "outputs", ["keras", "h5", "savedmodel", "onnx"])


def test_runner_build_pushes_and_the_image_pulls_back(
    runner: Runner, small_job: Callable[..., Path], docker_client: Any
) -> None:
    path = small_job("pushed", "echo pushed")
    built = runner("build", "--registry", "127.0.0.1:5000", str(path), timeout=600)
    assert built.code == 0, built.output[-3000:]
    reference = built.stdout.strip()
    assert reference.startswith("127.0.0.1:5000/runner/pushed:")
    assert "pushed sha256:" in built.stderr
    image_id = docker_client.images.get(reference).id
    docker_client.images.remove(reference)
    pulled = docker_client.images.pull(reference)
    assert pulled.id == image_id
    again = runner("build", "--registry", "127.0.0.1:5000", str(path))
    assert "unchanged (nothing to build)" in again.stderr


def test_auto_says_which_backend_it_picked(runner: Runner, small_job: Callable[..., Path]) -> None:
    path = small_job("auto", "echo where")
    with_engine = runner("submit", "--backend", "auto", str(path), timeout=600)
    assert with_engine.code == 0, with_engine.output[-3000:]
    assert "backend: docker (a Docker engine answers)" in with_engine.stderr
    without = runner(
        "submit", "--backend", "auto", str(path), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert without.code == 0, without.output[-3000:]
    assert "backend: process (no Docker engine answers)" in without.stderr


def test_gpus_need_the_nvidia_runtime(
    runner: Runner, small_job: Callable[..., Path], fake_gpus: Callable[..., None]
) -> None:
    fake_gpus(2)
    result = runner(
        "submit", "--backend", "docker", str(small_job("gpujob", "nvidia-smi", resources={"gpu": 1}))
    )
    assert result.code == 2
    assert "the Docker engine has no NVIDIA runtime" in result.stderr
    assert "NVIDIA Container Toolkit" in result.stderr


def test_failed_attempts_are_retried_in_fresh_containers(
    runner: Runner, small_job: Callable[..., Path], home: Path, docker_client: Any
) -> None:
    path = small_job("flaky", 'echo "attempt $RUNNER_ATTEMPT"; test "$RUNNER_ATTEMPT" -ge 2', retries=2)
    result = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    run = submitted_run(result)
    assert (status_of(run)["state"], status_of(run)["attempts"]) == ("succeeded", 2)
    logs = store_dir(home, "flaky", run) / "logs"
    assert (logs / "attempt-1.log").read_text() == "attempt 1\n"
    assert (logs / "attempt-2.log").read_text() == "attempt 2\n"
    assert containers_of(docker_client, run) == []
