"""Shared fixtures: an isolated RUNNER_HOME, the real `runner` command, manifests written on the fly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

# Container fixtures: docker_client, python_base_image, tensorflow_base_image, example_wheelhouse,
# no_leftover_containers (the engine is started by `make engine`; in CI a missing engine fails tests).
pytest_plugins = [
    "tests.support.engine.fixtures",
    "tests.support.apiserver.fixtures",
    "tests.support.s3_server",
    "tests.support.sim.fixtures",
    "tests.support.realcluster",
    "tests.support.webhook",
]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runner home; short grace and backoff so stopping and retrying take a second, not ten."""
    path = tmp_path / "home"
    monkeypatch.setenv("RUNNER_HOME", str(path))
    monkeypatch.delenv("RUNNER_STORE", raising=False)
    monkeypatch.setenv("RUNNER_GRACE", "1")
    monkeypatch.setenv("RUNNER_BACKOFF", "0.2")
    monkeypatch.setenv("RUNNER_BACKEND", "process")  # container tests ask for docker by name
    return path


def runner_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner.cli.main", *args]


def run_runner(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> Result:
    done = subprocess.run(
        runner_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def runner() -> Callable[..., Result]:
    return run_runner


def submit_launched(
    *args: str,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    run: Callable[..., Result] = run_runner,
) -> Result:
    """`runner submit -d ARGS`, then `runner wait --for launched` on its run: the run id on stdout once
    its job is launched (submit -d returns while it builds). The first command that fails is the result."""
    submitted = run("submit", "-d", *args, timeout=timeout, env=env)
    if submitted.code != 0:
        return submitted
    run_id = submitted.stdout.strip()
    waited = run(
        "wait", "--for", "launched", "--timeout", f"{int(timeout)}s", run_id, timeout=timeout + 30, env=env
    )
    return Result(waited.code, submitted.stdout, submitted.stderr + waited.stderr)


def write_job(directory: Path, name: str = "demo", **spec: Any) -> Path:
    """Write a manifest named job.yaml in directory; spec entries override the defaults below."""
    directory.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"command": ["sh", "-c", "echo hello"], **spec}
    manifest = {"apiVersion": "runner/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}
    path = directory / "job.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


@pytest.fixture
def job(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "demo", **spec: Any) -> Path:
        return write_job(tmp_path / "jobs" / name, name, **spec)

    return make


def submitted_run(result: Result) -> str:
    """The run id from `runner submit`'s "run <id> submitted" line."""
    for line in result.stderr.splitlines():
        if line.startswith("run ") and "submitted" in line:
            return line.split()[1]
    raise AssertionError(f"no run id in: {result.output}")


def store_dir(home: Path, job: str, run: str) -> Path:
    """A run's directory in the default file:// store of a runner home."""
    return home / "store" / job / run


def make_malaria_cells(directory: Path, per_class: int) -> Path:
    """A synthetic malaria data set in the NIH layout, from the example's own generator."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "jobs/malaria/make_synthetic.py"),
            str(directory),
            "--per-class",
            str(per_class),
        ],
        check=True,
        capture_output=True,
    )
    return directory


def status_of(run: str) -> dict[str, Any]:
    result = run_runner("status", run, "-o", "json")
    assert result.code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll until predicate returns something truthy; a bounded wait, never a timing assertion."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for_state(run: str, *states: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: doc if (doc := status_of(run))["state"] in states else None,
        timeout,
        f"run {run} to be {'/'.join(states)}",
    )
    return found


def process_exists(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int, str], None]:
    """Put an nvidia-smi on PATH that reports `count` GPUs of a given product name."""

    def install(count: int, product: str = "NVIDIA H100 80GB HBM3") -> None:
        bindir = tmp_path / "fake-bin"
        bindir.mkdir(exist_ok=True)
        lines = "".join(f"{i}, GPU-{i:08d}-fake, {product}, 81559\\n" for i in range(count))
        script = bindir / "nvidia-smi"
        script.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    return install


@pytest.fixture(autouse=True)
def _no_leftover_supervisors(home: Path) -> Iterator[None]:
    """After each test, every run in this home must have ended: no orphaned supervisors or jobs."""
    yield
    database = home / "runs.db"
    if not database.exists():
        return
    import sqlite3

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT id, supervisor_pid, job_pgid, state FROM runs").fetchall()
    for run_id, supervisor, pgid, state in rows:
        for pid in (supervisor, pgid):
            if pid and process_exists(pid):

                def gone(pid: int = pid) -> bool:
                    return not process_exists(pid)

                wait_for(gone, 30, f"process {pid} of run {run_id} ({state})")
