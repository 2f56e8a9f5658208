"""pytest plugin for the container tests (load it with `pytest_plugins = ["tests.support.engine.fixtures"]`).

Session fixtures:
    docker_client          a docker.DockerClient to the real engine, started by scripts/engine.sh
    python_base_image      "runner-test/python:bookworm", built on first use (about a minute)
    tensorflow_base_image  "tensorflow/tensorflow:2.21.0-gpu", the local stand-in (minutes the first time)
    example_wheelhouse     a directory of wheels for jobs/requirements.txt, for air-gapped job builds
Function fixture:
    no_leftover_containers after the test, fails it if a container labelled
                           app.kubernetes.io/managed-by=runner that the test made is still there (and
                           removes it, so that one failure does not cascade); `.check()` asserts earlier

Without an engine the tests that use these are skipped with the reason, or fail when env CI is true.
It also registers the `docker` marker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.support.engine import base_images, engine

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

T = TypeVar("T")

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_RUNNER = f"{MANAGED_BY}=runner"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "docker: uses the real Docker engine and registry (scripts/engine.sh starts them); the first run "
        "on a machine builds the base images, which takes minutes",
    )


@contextlib.contextmanager
def _to_terminal(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let a first build's progress reach the terminal instead of pytest's capture."""
    capture: Any = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


def _provide(request: pytest.FixtureRequest, build: Callable[[], T]) -> T:
    """build(), its progress on the terminal; skip (fail in CI) when this machine cannot build it."""
    try:
        with _to_terminal(request):
            return build()
    except base_images.BaseImageUnavailable as error:
        reason = str(error)
    engine.unavailable(reason)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return engine.docker_client()


@pytest.fixture(scope="session")
def python_base_image(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> str:
    return _provide(request, base_images.python_base)


@pytest.fixture(scope="session")
def tensorflow_base_image(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> str:
    return _provide(request, base_images.tensorflow_base)


@pytest.fixture(scope="session")
def example_wheelhouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of wheels for jobs/requirements.txt (what the TensorFlow stand-in lacks), for air-gapped
    job builds: copy it to a job context's `wheelhouse/`. Downloaded on the host once per machine."""
    dest = tmp_path_factory.mktemp("wheelhouse")
    return _provide(request, lambda: base_images.example_wheelhouse(dest))


def runner_containers(client: docker.DockerClient) -> list[Container]:
    """Every container, running or not, that carries app.kubernetes.io/managed-by=runner."""
    found: list[Container] = client.containers.list(all=True, filters={"label": MANAGED_BY_RUNNER})
    return found


def _mount_sources(container: Container) -> list[Path]:
    return [Path(mount["Source"]) for mount in container.attrs.get("Mounts") or [] if mount.get("Source")]


@dataclass
class ContainerGuard:
    """Containers managed by runner that appeared since the guard was made must be gone again.

    With `scope` (the test's temporary directory) and `sessions` (where every pytest session keeps
    its temporary directories), a container that binds a path of another session, and none of the
    scope, belongs to a session running beside this one on the same engine (two checkouts under
    test): it is left alone.
    """

    client: docker.DockerClient
    before: frozenset[str]
    scope: Path | None = None
    sessions: Path | None = None

    def leftovers(self) -> list[Container]:
        return [
            found
            for found in runner_containers(self.client)
            if found.id not in self.before and self._made_here(found)
        ]

    def _being_removed(self, container: Container) -> bool:
        """Whether the container is on its way out: a supervisor's remove still in flight when the test
        ends (the engine says "removing" for a while under load). Waits until it is gone (at most 30 s)."""
        import docker
        import requests

        if container.status != "removing":
            return False
        with contextlib.suppress(docker.errors.NotFound):
            try:
                container.wait(timeout=30, condition="removed")
            except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
                return False
        return True

    def _made_here(self, container: Container) -> bool:
        if self.scope is None or self.sessions is None:
            return True
        sources = _mount_sources(container)
        return any(source.is_relative_to(self.scope) for source in sources) or not any(
            source.is_relative_to(self.sessions) for source in sources
        )

    def check(self) -> None:
        import docker

        left = [found for found in self.leftovers() if not self._being_removed(found)]
        if not left:
            return
        described = [f"{found.name} ({found.short_id}, {found.status})" for found in left]
        for found in left:
            with contextlib.suppress(docker.errors.NotFound):
                found.remove(force=True, v=True)
        pytest.fail(
            f"{len(left)} container(s) labelled {MANAGED_BY_RUNNER} left behind (now removed): "
            + ", ".join(described),
            pytrace=False,
        )


@pytest.fixture
def no_leftover_containers(
    docker_client: docker.DockerClient, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainerGuard]:
    """Fail the test if it leaves a runner-managed container behind; remove what it left.

    Only containers that were not there when the test started count, so tests running in parallel
    processes do not blame (or remove) each other's live containers at setup; and only containers of
    this test's temporary directory, so that a session beside this one keeps its containers at the end.
    """
    before = frozenset(str(c.id) for c in runner_containers(docker_client))
    sessions = tmp_path_factory.getbasetemp().parent
    guard = ContainerGuard(docker_client, before, scope=tmp_path, sessions=sessions)
    yield guard
    guard.check()
