"""The container-test infrastructure itself: engine, registry, base images, the leftover guard."""

from __future__ import annotations

import contextlib
import json
import shutil
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.engine import base_images, engine
from tests.support.engine.fixtures import MANAGED_BY, ContainerGuard

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROBE_REPOSITORY = f"{engine.REGISTRY}/runner-test/probe"
EXAMPLES_PROBE_TAG = "runner-test/examples-probe:latest"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def run(
    client: docker.DockerClient, image: str, *command: str, environment: dict[str, str] | None = None
) -> str:
    """Run a command to its end in a fresh container (removed after) with no network; its stdout."""
    output: bytes = client.containers.run(
        image,
        list(command),
        remove=True,
        network_disabled=True,
        stdout=True,
        stderr=False,
        environment=environment,
    )
    return output.decode()


def test_unavailable_engine_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no engine here"):
        engine.unavailable("no engine here")
    for value in ("true", "1", "TRUE"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="no engine here"):
            engine.unavailable("no engine here")


@pytest.mark.docker
def test_engine_answers(docker_client: docker.DockerClient) -> None:
    assert docker_client.ping()
    assert docker_client.version()["Version"]


def delete_from_registry(repository: str, tag: str) -> None:
    name = repository.removeprefix(f"{engine.REGISTRY}/")
    url = f"http://{engine.REGISTRY}/v2/{name}/manifests/"
    head = urllib.request.Request(url + tag, method="HEAD", headers={"Accept": MANIFEST_V2})
    with urllib.request.urlopen(head, timeout=10) as response:
        digest = response.headers["Docker-Content-Digest"]
    with urllib.request.urlopen(
        urllib.request.Request(url + digest, method="DELETE"), timeout=10
    ) as response:
        assert response.status == 202


@pytest.mark.docker
def test_registry_accepts_a_push_and_gives_the_image_back(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    import docker

    tag = uuid.uuid4().hex[:12]
    reference = f"{PROBE_REPOSITORY}:{tag}"
    (tmp_path / "probe.txt").write_text(f"probe {tag}\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY probe.txt /\n")
    built, _ = docker_client.images.build(path=str(tmp_path), tag=reference, network_mode="none", rm=True)
    pushed = False
    try:
        for line in docker_client.images.push(PROBE_REPOSITORY, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
        pushed = True
        name = PROBE_REPOSITORY.removeprefix(f"{engine.REGISTRY}/")
        with urllib.request.urlopen(f"http://{engine.REGISTRY}/v2/{name}/tags/list", timeout=10) as response:
            assert tag in json.load(response)["tags"]

        docker_client.images.remove(reference)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(reference)
        pulled = docker_client.images.pull(PROBE_REPOSITORY, tag=tag)
        assert pulled.id == built.id
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(reference, force=True)
        if pushed:
            delete_from_registry(PROBE_REPOSITORY, tag)


@pytest.mark.docker
def test_python_base_runs_python3(docker_client: docker.DockerClient, python_base_image: str) -> None:
    assert python_base_image == base_images.PYTHON_TAG == "runner-test/python:bookworm"
    assert run(docker_client, python_base_image, "python3", "-c", "print(1)") == "1\n"
    # venv and pip are there; `python` is not, as in many real bases (the job image links it).
    probe = "python3 -m venv /tmp/v && /tmp/v/bin/pip --version >/dev/null && command -v python || echo none"
    assert run(docker_client, python_base_image, "sh", "-c", probe) == "none\n"


@pytest.mark.docker
def test_tensorflow_stand_in_imports_tensorflow(
    docker_client: docker.DockerClient, tensorflow_base_image: str
) -> None:
    assert tensorflow_base_image == "tensorflow/tensorflow:2.21.0-gpu"
    labels = docker_client.images.get(tensorflow_base_image).labels
    assert labels[base_images.LABEL_STAND_IN] == "true"
    assert "CPU-only" in labels[base_images.LABEL_STAND_IN_FOR]

    script = "import sys, tensorflow as tf; print(tf.__version__, sys.prefix)"
    output = run(
        docker_client,
        tensorflow_base_image,
        "python",
        "-c",
        script,
        environment={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert output.split() == ["2.21.0", "/opt/tf"]
    pip = run(docker_client, tensorflow_base_image, "pip", "--version")
    assert "/opt/tf/" in pip


@pytest.mark.docker
def test_builders_reuse_their_images(
    docker_client: docker.DockerClient, python_base_image: str, tensorflow_base_image: str
) -> None:
    before = {tag: docker_client.images.get(tag).id for tag in (python_base_image, tensorflow_base_image)}

    assert base_images.python_base() == python_base_image
    assert base_images.tensorflow_base() == tensorflow_base_image
    again = [base_images.ensure_python_base(), base_images.ensure_tensorflow_base()]

    assert [built.rebuilt for built in again] == [False, False]
    assert {built.tag: built.id for built in again} == before
    after = {tag: docker_client.images.get(tag).id for tag in before}
    assert after == before
    # A different recipe does not count as current: that is what makes a changed recipe rebuild.
    assert (
        base_images.current(docker_client, python_base_image, base_images.python_recipe())
        == before[python_base_image]
    )
    assert base_images.current(docker_client, python_base_image, "another recipe") is None


@pytest.mark.docker
def test_leftover_guard_reports_and_removes(
    docker_client: docker.DockerClient, python_base_image: str, no_leftover_containers: ContainerGuard
) -> None:
    no_leftover_containers.check()
    left = docker_client.containers.create(
        python_base_image,
        ["true"],
        labels={MANAGED_BY: "runner"},
        name=f"runner-test-left-{uuid.uuid4().hex[:8]}",
    )
    with pytest.raises(pytest.fail.Exception, match=f"left behind.*{left.name}"):
        no_leftover_containers.check()
    assert no_leftover_containers.leftovers() == []


@pytest.mark.docker
def test_example_wheelhouse_installs_offline_into_the_stand_in(
    docker_client: docker.DockerClient, tensorflow_base_image: str, example_wheelhouse: Path, tmp_path: Path
) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    shutil.copytree(example_wheelhouse, wheelhouse)
    names = {path.name.split("-")[0].lower() for path in wheelhouse.glob("*.whl")}
    assert {"scikit_learn", "matplotlib", "tf2onnx", "onnx"} <= names
    assert "tensorflow" not in names  # the base has it

    (tmp_path / "requirements.txt").write_text(base_images.EXAMPLE_REQUIREMENTS.read_text())
    (tmp_path / "Dockerfile").write_text(
        f"FROM {tensorflow_base_image}\n"
        "COPY wheelhouse /tmp/wheelhouse\n"
        "COPY requirements.txt /tmp/requirements.txt\n"
        "RUN pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse -r /tmp/requirements.txt\n"
    )
    client = base_images.build_client()  # a pip install may stay silent longer than a request usually waits
    # Tagged and kept: with the same wheels a later run hits the build cache and takes seconds.
    image, _ = client.images.build(
        path=str(tmp_path),
        tag=EXAMPLES_PROBE_TAG,
        network_mode="none",
        rm=True,
        forcerm=True,
        labels={base_images.LABEL_TEST_IMAGE: "examples-probe"},
    )
    script = "import sklearn, matplotlib, h5py, tf2onnx, onnx, tensorflow; print('ok')"
    assert (
        run(docker_client, str(image.id), "python", "-c", script, environment={"TF_CPP_MIN_LOG_LEVEL": "3"})
        == "ok\n"
    )


@pytest.mark.docker
def test_leftover_guard_leaves_a_session_beside_it_alone(
    docker_client: docker.DockerClient,
    python_base_image: str,
    no_leftover_containers: ContainerGuard,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    beside = tmp_path_factory.getbasetemp().parent / f"pytest-beside-{uuid.uuid4().hex[:8]}"
    beside.mkdir()

    def made(binding: Path) -> Container:
        return docker_client.containers.create(
            python_base_image,
            ["true"],
            labels={MANAGED_BY: "runner"},
            name=f"runner-test-guard-{uuid.uuid4().hex[:8]}",
            volumes={str(binding): {"bind": "/outputs", "mode": "rw"}},
        )

    theirs, ours = made(beside), made(tmp_path)
    try:
        assert [found.id for found in no_leftover_containers.leftovers()] == [ours.id]
    finally:
        for container in (theirs, ours):
            container.remove(force=True)
        beside.rmdir()
