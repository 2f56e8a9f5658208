"""RunService.ready_backend: a foreground submit starts its local supervisor's interpreter early; a
detached one (whose builder process launches) starts nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.config import load_settings
from runner.service.runs import RunService


def awaiting_supervisors() -> list[int]:
    """This process's children that are a prestarted supervisor (waiting for its run id): every process
    whose parent is this one, by its stat (a thread's /proc children list is documented unreliable while
    the tasks run, and missed a child just started now and then)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces
        if parent == os.getpid() and b"--await" in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunService]:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    made = RunService(load_settings())
    yield made
    made.records.close()


def test_a_foreground_submit_prestarts_its_supervisor_and_release_lets_it_go(service: RunService) -> None:
    ready = service.ready_backend("process")
    try:
        assert len(awaiting_supervisors()) == 1
    finally:
        service.release(ready)
    assert awaiting_supervisors() == []


def test_a_detached_submit_starts_no_supervisor(service: RunService) -> None:
    ready = service.ready_backend("process", prestart=False)
    try:
        assert awaiting_supervisors() == []
    finally:
        service.release(ready)
