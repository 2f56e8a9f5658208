"""Fixtures for the example-job tests: a runner-like copy of jobs/ and a way to run a job in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
# What jobs/.dockerignore keeps out of the build context.
IGNORED = shutil.ignore_patterns("data", "outputs", "__pycache__", "*.pyc")
# Top-level packages of jobs/ that tests may import in-process.
JOB_PACKAGES = ("common", "mnist", "malaria", "regression")


@dataclass
class JobRun:
    """A finished job: exit status, logs and its outputs directory."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    outputs: Path
    seconds: float
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    @property
    def metrics(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outputs / "metrics.json").read_text())
        return data

    def check(self) -> JobRun:
        assert self.returncode == 0, f"{' '.join(self.args)} exited {self.returncode}\n{self.log[-6000:]}"
        return self


def offline_env(home: Path) -> dict[str, str]:
    """Environment in which downloads fail at once (a proxy on a closed port) and nothing is cached.

    The sandbox the tests usually run in has no network anyway; this makes the MNIST
    fallback test mean the same thing on a machine that does.
    """
    return {
        "KERAS_HOME": str(home),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "no_proxy": "",
    }


@pytest.fixture(scope="session")
def jobs_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of jobs/, as the runner makes of a job's `context: ..`."""
    target = tmp_path_factory.mktemp("context") / "jobs"
    shutil.copytree(JOBS_DIR, target, ignore=IGNORED)
    return target


RunJob = Callable[..., JobRun]


@pytest.fixture(scope="session")
def run_job(jobs_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> RunJob:
    """Run ``python -m <module> <args>`` the way the runner does: cwd = the context copy,
    RUNNER_OUTPUTS = a fresh directory, plus any extra environment variables."""

    def run(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> JobRun:
        outputs = tmp_path_factory.mktemp(module.partition(".")[0] + "-outputs")
        full_env = {
            **os.environ,
            **offline_env(tmp_path_factory.mktemp("keras-home")),
            "RUNNER_OUTPUTS": str(outputs),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        }
        command = [sys.executable, "-m", module, *args]
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=jobs_copy,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return JobRun(
            command, done.returncode, done.stdout, done.stderr, outputs, time.monotonic() - started, full_env
        )

    return run


@pytest.fixture
def job_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make jobs/ importable in-process (``from common import kit``), and forget it afterwards."""
    monkeypatch.syspath_prepend(str(JOBS_DIR))
    yield JOBS_DIR
    for name in list(sys.modules):
        if name.split(".")[0] in JOB_PACKAGES:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(JOBS_DIR)):
                del sys.modules[name]
