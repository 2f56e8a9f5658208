"""Issue 14's defects that need the Docker engine, through the real command."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backends.local.test_bounds import nothing_of_the_run
from tests.conftest import Result, runner_command, store_dir, submitted_run

Runner = Callable[..., Result]

pytestmark = pytest.mark.usefixtures("docker_client", "no_leftover_containers")


# ---------------------------------------------------------------- 4: resources beyond the machine


@pytest.mark.parametrize(
    ("resources", "said"),
    [
        ({"cpu": 1000}, "spec.resources.cpu: 1000 asked, this machine's Docker engine has"),
        ({"memory": "1000Ti"}, "spec.resources.memory: 1000Ti asked, this machine's Docker engine has"),
    ],
)
def test_resources_beyond_the_machine_are_refused_before_the_build(
    runner: Runner, job: Callable[..., Path], home: Path, resources: dict[str, object], said: str
) -> None:
    # a base image that does not exist: a build, had it started, would fail differently
    path = job("greedy", image={"base": f"runner-test/absent-{uuid.uuid4().hex[:8]}:1"}, resources=resources)
    result = runner("submit", "--backend", "docker", str(path), timeout=120)
    assert result.code == 2, result.output
    assert said in result.stderr, result.stderr
    assert "400 Client Error" not in result.stderr and "Traceback" not in result.stderr
    assert "lower spec.resources" in result.stderr
    assert "build" not in result.stderr.lower()
    nothing_of_the_run(home)


# ------------------------------------------------ 9 and 14: the log's bytes, the image's digest


def test_a_docker_run_keeps_its_logs_bytes_and_records_its_images_digest(
    runner: Runner, job: Callable[..., Path], home: Path, python_base_image: str, docker_client: Any
) -> None:
    path = job("bytes", image={"base": python_base_image}, command=["sh", "-c", r"printf 'a\377b\n'"])
    (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)  # a fresh image
    done = subprocess.run(
        runner_command("submit", "--backend", "docker", str(path)),
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done
    assert b"a\xffb\n" in done.stdout  # streamed as written: stdout is a pipe here
    run = submitted_run(Result(done.returncode, "", done.stderr.decode()))
    assert (store_dir(home, "bytes", run) / "logs" / "attempt-1.log").read_bytes() == b"a\xffb\n"
    piped = subprocess.run(runner_command("logs", run), capture_output=True, check=False, timeout=60)
    assert piped.stdout == b"a\xffb\n", piped
    document = json.loads((store_dir(home, "bytes", run) / "run.json").read_text())
    reference, digest = document["image"]["reference"], document["image"]["digest"]
    assert digest == docker_client.images.get(reference).id and digest.startswith("sha256:")
    shown = json.loads(runner("status", run, "-o", "json").stdout)
    assert shown["image"] == {"reference": reference, "digest": digest}
    assert digest in runner("status", run).stdout


# ---------------------------------------------------------------- prune: job images no run uses


def test_prune_removes_job_images_no_run_uses_keeping_the_newest(
    runner: Runner, job: Callable[..., Path], home: Path, python_base_image: str, docker_client: Any
) -> None:
    name = f"pruned-{uuid.uuid4().hex[:6]}"
    path = job(name, image={"base": python_base_image}, command=["true"])
    references = []
    for _ in range(3):  # every code edit builds another tag
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)
        result = runner("submit", "--backend", "docker", str(path), timeout=300)
        assert result.code == 0, result.output
        run = submitted_run(result)
        references.append(json.loads(runner("status", run, "-o", "json").stdout)["image"]["reference"])
        if len(references) < 3:
            assert runner("delete", run).code == 0
    first, second, third = references
    dry = runner("prune", "--job", name, "--dry-run")
    assert dry.code == 0, dry.output
    assert f"would remove image {first}" in dry.stdout and f"would remove image {second}" in dry.stdout
    assert third not in dry.stdout
    done = runner("prune", "--job", name)
    assert done.code == 0 and f"removed image {first}" in done.stdout, done.output
    left = {
        tag
        for image in docker_client.images.list(filters={"label": f"runner.dev/job={name}"})
        for tag in image.tags
    }
    assert left == {third}
    assert runner("delete", submitted_run_of(runner, name)).code == 0
    assert runner("prune", "--job", name).stdout == ""  # the newest stays for the next submit
    docker_client.images.remove(third)


def submitted_run_of(runner: Runner, job: str) -> str:
    listed = json.loads(runner("list", "--job", job, "-o", "json").stdout)
    return str(listed[0]["id"])
