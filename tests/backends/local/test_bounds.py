"""Issue 11, items 6, 12 and 15 on the process backend, through the real `runner` command: the supervisor
and the collector never import a runner/ where the submitter stands; special files and oversized contexts
are refused before anything of the run exists; outputs are capped; a manifest that is a FIFO is refused
rather than waited on."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.backends.local.supervised import supervisor_command
from tests.conftest import (
    Result,
    process_exists,
    status_of,
    store_dir,
    wait_for,
)

Runner = Callable[..., Result]
Job = Callable[..., Path]
TERMINAL = ("succeeded", "failed", "lost", "cancelled", "timed_out", "uncollected")


def nothing_of_the_run(home: Path) -> None:
    """No work directory and no record: a refused submit leaves nothing half-created."""
    runs = home / "runs"
    assert not runs.exists() or not list(runs.iterdir())
    if (home / "runs.db").exists():
        with sqlite3.connect(home / "runs.db") as db:
            assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


# 6. the supervisor and the collector import only the installed runner


@pytest.fixture
def shadowing(tmp_path: Path) -> tuple[Path, Path]:
    """A directory holding a runner/ package that marks and refuses any import of it (exit 99)."""
    here = tmp_path / "here"
    (here / "runner").mkdir(parents=True)
    marker = tmp_path / "SHADOWED"
    (here / "runner/__init__.py").write_text(
        f"import pathlib, sys\npathlib.Path({str(marker)!r}).touch()\nprint('SHADOWED')\nsys.exit(99)\n"
    )
    (here / "runner.py").write_text((here / "runner/__init__.py").read_text())
    return here, marker


def runner_in(cwd: Path, *args: str) -> Result:
    """The installed command run from cwd (as its console script does: cwd is not on its own path)."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "runner.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_the_supervisor_command_keeps_the_current_directory_off_its_path(
    shadowing: tuple[Path, Path],
) -> None:
    here, marker = shadowing
    command = supervisor_command("--collect", "some-run")
    assert command[:3] == [sys.executable, "-P", "-S"] and command[-2:] == ["--collect", "some-run"]
    assert str(here) not in command[5].split("\n")
    usage = subprocess.run(
        supervisor_command(), check=False, cwd=here, capture_output=True, text=True, timeout=60
    )
    assert (usage.returncode, "SHADOWED" in usage.stdout) == (2, False), usage
    assert "usage: python -m runner.backends.local.supervisor" in usage.stderr
    assert not marker.exists()


def test_a_runner_package_where_the_submitter_stands_is_never_imported(
    job: Job, home: Path, shadowing: tuple[Path, Path]
) -> None:
    here, marker = shadowing
    submitted = runner_in(here, "submit", "-d", "--backend", "process", str(job("plain")))
    assert submitted.code == 0, submitted.output
    run = submitted.stdout.strip()
    wait_for(
        lambda: marker.exists() or status_of(run)["state"] in TERMINAL, 60, "the run to end (or be shadowed)"
    )
    assert not marker.exists(), (home / "runs" / run / "supervisor.log").read_text()
    assert status_of(run)["state"] == "succeeded"


def test_the_collector_of_a_lost_run_is_never_shadowed_either(
    runner: Runner, job: Job, home: Path, shadowing: tuple[Path, Path]
) -> None:
    here, marker = shadowing
    run = runner(
        "submit", "-d", str(job("orphan", command=["sh", "-c", "echo up; sleep 300"]))
    ).stdout.strip()
    wait_for(lambda: "up" in runner("logs", run).stdout, what="the job to start")
    with sqlite3.connect(home / "runs.db") as db:
        (supervisor,) = db.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run,)).fetchone()
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    runner_in(here, "status", run)  # starts the detached collector from here
    wait_for(lambda: marker.exists() or status_of(run)["state"] in TERMINAL, 60, "the collector")
    assert not marker.exists()
    assert status_of(run)["state"] == "lost"


# 12. special files and oversized contexts refused before anything exists; outputs capped


def test_a_fifo_in_the_context_is_refused_by_name_and_nothing_is_created(
    runner: Runner, job: Job, home: Path
) -> None:
    path = job("piped")
    os.mkfifo(path.parent / "pipe")
    result = runner("submit", str(path), timeout=60)
    assert result.code == 2, result.output
    assert f"{path.parent / 'pipe'} is a FIFO (named pipe)" in result.stderr
    assert "Traceback" not in result.output and "shutil.Error" not in result.output
    nothing_of_the_run(home)


def test_a_device_in_the_context_is_refused_not_read(runner: Runner, job: Job, home: Path) -> None:
    path = job("device")
    try:
        os.mknod(path.parent / "zero", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs root")
    result = runner("submit", str(path), timeout=60)
    assert result.code == 2, result.output
    assert f"{path.parent / 'zero'} is a character device" in result.stderr
    nothing_of_the_run(home)


def test_the_root_directory_as_context_is_refused_at_once(runner: Runner, job: Job, home: Path) -> None:
    result = runner("submit", str(job("everything", image={"context": "/"})), timeout=60)
    assert result.code == 2, result.output
    assert "spec.image.context: /" in result.stderr
    nothing_of_the_run(home)


def test_a_context_over_the_cap_is_refused_unless_the_dockerignore_leaves_it_out(
    runner: Runner, job: Job, home: Path
) -> None:
    path = job("heavy")
    with (path.parent / "data.bin").open("wb") as data:
        data.truncate(3 * 2**20)
    env = {"RUNNER_MAX_CONTEXT": "2Mi"}
    result = runner("submit", str(path), env=env, timeout=60)
    assert result.code == 2, result.output
    assert "holds more than 2.0 MiB (RUNNER_MAX_CONTEXT)" in result.stderr
    assert "data.bin (3.0 MiB)" in result.stderr
    nothing_of_the_run(home)
    (path.parent / ".dockerignore").write_text("data.bin\n")
    assert runner("submit", str(path), env=env).code == 0


def test_outputs_beyond_the_cap_are_refused_and_listed(runner: Runner, job: Job, home: Path) -> None:
    """A 2 GiB sparse output counts as 2 GiB: refused under a 1 MiB cap, and the store holds none of it."""
    script = (
        'truncate -s 2G "$RUNNER_OUTPUTS/sparse.img"; echo metrics > "$RUNNER_OUTPUTS/metrics.json"; '
        'head -c 600000 /dev/zero > "$RUNNER_OUTPUTS/model-a.bin"; cp "$RUNNER_OUTPUTS/model-a.bin" '
        '"$RUNNER_OUTPUTS/model-b.bin"'
    )
    result = runner(
        "submit", str(job("capped", command=["sh", "-c", script])), env={"RUNNER_MAX_OUTPUTS": "1Mi"}
    )
    assert result.code == 0, result.output
    run = json.loads(runner("list", "-o", "json").stdout)[0]["id"]
    refused = {item["path"]: item["reason"] for item in status_of(run)["refused"]}
    assert set(refused) == {"outputs/model-b.bin", "outputs/sparse.img"}, refused
    assert refused["outputs/sparse.img"].startswith("2.0 GiB, beyond the 1.0 MiB cap on a run's outputs")
    assert "outputs/sparse.img" in result.output  # submit lists what the store refused
    stored = store_dir(home, "capped", run) / "outputs"
    assert sorted(path.name for path in stored.iterdir()) == ["metrics.json", "model-a.bin"]


# 15. a manifest that is a FIFO is refused, never waited on


@pytest.mark.parametrize("command", [["validate"], ["render"], ["submit"]])
def test_a_manifest_that_is_a_fifo_nothing_writes_to_is_refused(
    runner: Runner, home: Path, tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "job.yaml"
    os.mkfifo(path)
    result = runner(*command, str(path), timeout=60)
    assert result.code == 2, result.output
    assert f"{path}: is a FIFO (named pipe) with nothing to read after 2s" in result.stderr
    nothing_of_the_run(home)


def test_a_manifest_piped_in_is_read(runner: Runner, job: Job, tmp_path: Path) -> None:
    """`runner validate <(envsubst < job.yaml)`: a FIFO someone writes to is read as the manifest."""
    text = job("piped").read_text()
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)

    def write() -> None:
        with path.open("w") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = runner("validate", str(path), timeout=60)
    writer.join(10)
    assert result.code == 0, result.output
    assert "valid (job piped)" in result.stdout
