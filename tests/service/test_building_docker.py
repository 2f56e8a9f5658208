"""The building state through `runner`, with real image builds on the docker backend: a build that
fails is a failed run whose build log is in the store; a detached build can be listed, waited on,
cancelled, and a builder that dies fails its run. pip on this machine is pointed at a package index of
the test's (tests.support.pipindex) that knows nothing, or holds the build in its first download."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.backends.identity import is_alive
from runner.records import RunRecords
from tests.conftest import Result, process_exists, status_of, store_dir, wait_for
from tests.support.pipindex import PackageIndex, package_index

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

Runner = Callable[..., Result]


@pytest.fixture
def steered(home: Path, python_base_image: str, job: Callable[..., Path]) -> Callable[[PackageIndex], Any]:
    """A small docker job, and the environment that makes its build's pip ask index."""

    def make(index: PackageIndex) -> tuple[Path, dict[str, str]]:
        path = job("steered", image={"base": python_base_image}, command=["true"])
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)  # an image of its own: it is built
        return path, {"PIP_INDEX_URL": index.url, "PIP_EXTRA_INDEX_URL": "", "PIP_RETRIES": "0"}

    return make


def builder_of(home: Path, run: str) -> tuple[int, str]:
    record = RunRecords(home / "runs.db").get(run)
    assert record.supervisor_pid is not None and record.supervisor_start is not None
    return record.supervisor_pid, record.supervisor_start


def test_a_build_that_fails_is_a_failed_run_with_its_build_log_in_the_store(
    runner: Runner, home: Path, steered: Callable[[PackageIndex], Any]
) -> None:
    with package_index(holding=False) as index:
        path, env = steered(index)
        result = runner("submit", "--backend", "docker", str(path), env=env, timeout=300)
    assert result.code == 1, result.output
    assert "Traceback" not in result.stderr
    (run,) = runner("list", "-o", "name").stdout.split()
    assert f"run {run} failed: its build failed (runner logs {run} prints its build log)" in result.stderr
    doc = status_of(run)
    assert doc["state"] == "failed"
    assert doc["message"].startswith("its build failed: resolving the agent's packages for Python 3.11")
    stored = (store_dir(home, "steered", run) / "logs" / "build.log").read_text()
    assert "pip download exited with code 1" in stored and index.url.split("/simple")[0] in stored
    logs = runner("logs", run)
    assert logs.code == 0 and logs.stdout == stored


def test_a_detached_build_that_fails_is_never_launched_and_says_where_its_log_is(
    runner: Runner, home: Path, steered: Callable[[PackageIndex], Any]
) -> None:
    with package_index(holding=False) as index:
        path, env = steered(index)
        submitted = runner("submit", "-d", "--backend", "docker", str(path), env=env)
        assert submitted.code == 0, submitted.output
        run = submitted.stdout.strip()
        assert f"building, log: {home / 'builds' / run}.log" in submitted.stderr
        waited = runner("wait", "--for", "launched", run, timeout=300)
    assert waited.code == 1, waited.output
    assert f"error: run {run} was never launched: failed, its build failed: resolving" in waited.stderr
    assert f"hint: runner logs {run} prints its build log" in waited.stderr
    assert runner("wait", run).code == 1  # finished: failed, its exit code
    local = (home / "builds" / f"{run}.log").read_text()
    assert "resolving the agent's packages on this machine" in local and "error: resolving" in local
    assert "pip download exited with code 1" in runner("logs", run).stdout


def test_a_building_run_is_listed_and_cancel_stops_its_builder_and_pip(
    runner: Runner, home: Path, steered: Callable[[PackageIndex], Any]
) -> None:
    with package_index(holding=True) as index:
        path, env = steered(index)
        run = runner("submit", "-d", "--backend", "docker", str(path), env=env).stdout.strip()
        wait_for(lambda: index.requests, 120, "the build's pip to ask the index")
        listed = json.loads(runner("list", "-o", "json").stdout)
        assert [(doc["id"], doc["state"]) for doc in listed] == [(run, "building")]
        assert runner("list", "--state", "building", "-o", "name").stdout.split() == [run]
        builder, started = builder_of(home, run)
        pips = pip_processes(index.url)
        assert pips, "pip download is running for the build"

        cancelled = runner("cancel", run)
        assert (cancelled.code, cancelled.stdout.strip()) == (0, f"run {run} cancelled"), cancelled.output
        assert not is_alive(builder, started)
        wait_for(lambda: not any(map(process_exists, pips)), 10, "pip to be stopped with its build")
    doc = status_of(run)
    assert (doc["state"], doc["message"]) == ("cancelled", "cancelled while building its image")
    assert runner("wait", run).code == 130
    assert runner("logs", run).stdout.endswith("cancelled while building its image\n")


def test_a_run_whose_builder_is_killed_has_failed(
    runner: Runner, home: Path, steered: Callable[[PackageIndex], Any]
) -> None:
    with package_index(holding=True) as index:
        path, env = steered(index)
        run = runner("submit", "-d", "--backend", "docker", str(path), env=env).stdout.strip()
        wait_for(lambda: index.requests, 120, "the build's pip to ask the index")
        builder, _ = builder_of(home, run)
        pips = pip_processes(index.url)
        os.kill(builder, signal.SIGKILL)
        try:
            doc = wait_for(lambda: (d := status_of(run))["state"] != "building" and d, 30, "its end")
        finally:
            for pid in pips:  # pip outlives a builder killed with SIGKILL: it is this test's to stop
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert (doc["state"], doc["message"]) == (
        "failed",
        f"its build stopped: the process building it ({builder}) is gone",
    )


def pip_processes(index_url: str) -> list[int]:
    """The pids of the pip processes whose environment points them at index_url."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PIP_INDEX_URL={index_url}".encode() in environ and b"pip\0download" in command:
            found.append(int(entry.name))
    return found
