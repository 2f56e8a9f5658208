"""The real Docker engine and registry on this machine, started on demand by `scripts/engine.sh start`.

`docker_client()` is what tests call: it starts the engine once per process and returns a client. When
the engine cannot be had, a test is skipped with the reason, except in CI (env `CI` is "true" or "1"),
where it fails: CI must never go green by skipping the container tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    import docker

REPO = Path(__file__).resolve().parents[3]
ENGINE_SCRIPT = REPO / "scripts" / "engine.sh"
REGISTRY = "127.0.0.1:5000"
# Debian's client, matching Debian's engine (another `docker` may come first on PATH).
DOCKER_CLI = "/usr/bin/docker"

# Installing docker.io from Debian the first time takes a minute or two; starting takes seconds.
START_TIMEOUT_S = 900
# Per request; image builds and pushes use their own, longer-lived clients (see base_images.py).
CLIENT_TIMEOUT_S = 300


class EngineUnavailable(RuntimeError):
    """The engine (or the registry) cannot be started or reached on this machine."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def unavailable(reason: str) -> NoReturn:
    """Skip the current test with the reason, or fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: container tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


class _Process:
    """What this process already knows: whether start ran (and why it failed), its client."""

    started: str | None = None  # None: not tried; "": started; otherwise why it could not be
    client: docker.DockerClient | None = None


def ensure_engine() -> None:
    """Run `scripts/engine.sh start` once per process; raise EngineUnavailable with its output if it fails."""
    if _Process.started is None:
        _Process.started = _start()
    if _Process.started:
        raise EngineUnavailable(_Process.started)


def _start() -> str:
    try:
        done = subprocess.run(
            ["bash", str(ENGINE_SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{ENGINE_SCRIPT.name} start did not finish in {START_TIMEOUT_S}s"
    except OSError as error:
        return f"cannot run {ENGINE_SCRIPT}: {error}"
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        return f"{ENGINE_SCRIPT.name} start exited {done.returncode}: {tail}"
    return ""


def connect(timeout: int = CLIENT_TIMEOUT_S) -> docker.DockerClient:
    """A new client to the engine, started when needed; raise EngineUnavailable when there is none."""
    try:
        import docker
    except ImportError as error:
        raise EngineUnavailable(f"the docker SDK is not installed ({error}); pip install docker") from error
    ensure_engine()
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as error:
        raise EngineUnavailable(f"the Docker engine does not answer: {error}") from error
    return client


def docker_client() -> docker.DockerClient:
    """The process's client to the engine; skip (fail in CI) the calling test when there is no engine."""
    if _Process.client is None:
        reason = ""
        try:
            _Process.client = connect()
        except EngineUnavailable as error:
            reason = str(error)
        if reason:
            unavailable(reason)
    assert _Process.client is not None
    return _Process.client
