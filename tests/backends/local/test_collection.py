"""Nothing lost, nothing leaked (issue 11): collection that fails or is cut short, lost runs, the job's
leftovers. Each test goes through the real `runner` command, real processes and a real file store; full
and read-only disks are small tmpfs mounts (the tests that need one skip where mounting is not allowed).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Result,
    process_exists,
    status_of,
    store_dir,
    submitted_run,
    wait_for,
    wait_for_state,
)
from tests.support.mounts import fill, remount

Runner = Callable[..., Result]
Job = Callable[..., Path]
Mount = Callable[..., Path]

TEN_MEGABYTES = 'for i in 0 1 2 3 4 5 6 7 8 9; do head -c 1048576 /dev/urandom > "$RUNNER_OUTPUTS/f$i"; done'


def db_row(home: Path, run: str, *columns: str) -> tuple[Any, ...]:
    with sqlite3.connect(home / "runs.db") as db:
        row = db.execute(f"SELECT {', '.join(columns)} FROM runs WHERE id = ?", (run,)).fetchone()
    assert row is not None
    return tuple(row)


def db_set(home: Path, run: str, **values: Any) -> None:
    with sqlite3.connect(home / "runs.db") as db:
        assignments = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), run])


def manifest_paths(store: Path) -> set[str]:
    return {entry["path"] for entry in json.loads((store / "MANIFEST.json").read_text())["files"]}


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def kill_supervisor(home: Path, run: str) -> tuple[int, int | None]:
    supervisor, pgid = db_row(home, run, "supervisor_pid", "job_pgid")
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    return supervisor, pgid


# 1. a failed collection never deletes the only copy, is not `succeeded`, and can be collected again


def test_a_full_store_keeps_the_outputs_and_runner_collect_finishes_later(
    runner: Runner, job: Job, home: Path, tmpfs: Mount
) -> None:
    disk = tmpfs("3m", "store")
    env = {"RUNNER_STORE": disk.as_uri()}
    result = runner("submit", str(job("big", command=["sh", "-c", TEN_MEGABYTES])), env=env)
    run = submitted_run(result)
    assert result.code == 1, result.output
    assert "uncollected" in result.stderr and "collecting artifacts failed" in result.stderr
    assert "Traceback" not in result.output
    doc = status_of(run)
    assert doc["state"] == "uncollected"
    assert "No space left on device" in doc["message"] and f"runner collect {run}" in doc["message"]
    outputs = home / "runs" / run / "outputs"
    assert sorted(path.name for path in outputs.iterdir()) == [f"f{i}" for i in range(10)], "nothing lost"
    assert not (disk / "big" / run / "MANIFEST.json").exists()

    still_full = runner("collect", run, env=env)
    assert still_full.code == 1 and "still uncollected" in still_full.stderr, still_full.output
    assert len(list(outputs.iterdir())) == 10

    remount(disk, "size=20m")
    collected = runner("collect", run, env=env)
    assert collected.code == 0, collected.output
    assert f"run {run} succeeded" in collected.stdout
    assert {f"outputs/f{i}" for i in range(10)} <= manifest_paths(disk / "big" / run)
    assert status_of(run)["state"] == "succeeded"
    assert json.loads((disk / "big" / run / "run.json").read_text())["state"] == "succeeded"
    assert not outputs.exists(), "the work directory's outputs go only once the store has them"
    assert json.loads((disk / "big" / "latest").read_text())["run"] == run


def test_a_store_gone_read_only_mid_run_is_collected_by_a_later_command(
    runner: Runner, job: Job, home: Path, tmp_path: Path, tmpfs: Mount
) -> None:
    disk = tmpfs("20m", "store")
    go = tmp_path / "go"
    env = {"RUNNER_STORE": disk.as_uri()}
    wait_go = f'echo x > "$RUNNER_OUTPUTS/x"; echo waiting; while [ ! -e {go} ]; do sleep 0.05; done'
    run = runner("submit", "-d", str(job("ro", command=["sh", "-c", wait_go])), env=env).stdout.strip()
    wait_for(lambda: "waiting" in runner("logs", run).stdout, what="the job to start")
    remount(disk, "ro")
    go.touch()
    doc = wait_for_state(run, "uncollected")
    assert doc["exitCode"] == 0 and "Read-only file system" in doc["message"]
    remount(disk, "rw")
    db_set(home, run, next_collect=0.0)  # as if the retry interval had passed
    listing = runner("list", "-o", "json", env=env)
    assert listing.code == 0, listing.output
    assert wait_for_state(run, "succeeded")["exitCode"] == 0
    assert "outputs/x" in manifest_paths(disk / "ro" / run)


@pytest.mark.parametrize("kind", ["ftp", "file", "read-only", "full"])
def test_a_store_that_cannot_take_the_artifacts_is_refused_before_the_job_starts(
    runner: Runner, job: Job, home: Path, *, tmp_path: Path, tmpfs: Mount, kind: str
) -> None:
    if kind == "ftp":
        store = "ftp://x/y"
    elif kind == "file":
        regular = tmp_path / "a-file"
        regular.write_text("not a directory\n")
        store = regular.as_uri()
    else:
        disk = tmpfs("1m", "store")
        if kind == "read-only":
            remount(disk, "ro")
        else:
            fill(disk)
        store = disk.as_uri()
    marker = tmp_path / "ran"
    result = runner(
        "submit", str(job("refused", command=["touch", str(marker)])), env={"RUNNER_STORE": store}
    )
    assert result.code == 2, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert "RUNNER_STORE" in result.stderr or "cannot be written" in result.stderr
    assert not marker.exists(), "the job never ran"
    assert runner("list", "-o", "name").stdout == ""
    assert not (home / "runs").exists() or not any((home / "runs").iterdir()), "nothing was created"


# 2. a run complete in the store is the truth: never collected again


@pytest.mark.parametrize("left_as", ["running", "collecting"])
def test_a_supervisor_killed_after_manifest_leaves_the_run_as_the_store_says(
    runner: Runner, job: Job, home: Path, left_as: str
) -> None:
    result = runner("submit", str(job("done", command=["sh", "-c", 'echo m > "$RUNNER_OUTPUTS/model"'])))
    assert result.code == 0, result.output
    run = submitted_run(result)
    store = store_dir(home, "done", run)
    before = {name: (store / name).read_bytes() for name in ("MANIFEST.json", "run.json")}
    # the moment after MANIFEST.json was written, before the end was recorded: a dead supervisor, no
    # exit file (so the job's end is unknown here), the outputs half gone from the work directory
    (home / "runs" / run / "attempt-1.exit").unlink()
    outcome = json.dumps({"state": "succeeded", "exitCode": 0, "attempts": [], "message": "succeeded"})
    db_set(
        home,
        run,
        state=left_as,
        supervisor_pid=dead_pid(),
        supervisor_start="1",
        outcome=outcome if left_as == "collecting" else "{}",
        message="collecting artifacts",
    )
    doc = status_of(run)
    assert (doc["state"], doc["exitCode"]) == ("succeeded", 0), doc
    assert {name: (store / name).read_bytes() for name in before} == before, "never collected over"
    assert json.loads((home / "store" / "done" / "latest").read_text())["run"] == run


# 3. lost runs are collected by a detached collector: resumable, never holding up `list`


def test_a_lost_run_is_collected_outside_list_and_a_stranded_claim_is_resumed(
    runner: Runner, job: Job, home: Path
) -> None:
    many = 'mkdir "$RUNNER_OUTPUTS/d"; for i in $(seq 1 300); do echo $i > "$RUNNER_OUTPUTS/d/$i"; done'
    path = job("lots", command=["sh", "-c", f"{many}; echo ready; sleep 300"])
    run = runner("submit", "-d", str(path)).stdout.strip()
    wait_for(lambda: "ready" in runner("logs", run).stdout, what="the job to write its outputs")
    supervisor, pgid = kill_supervisor(home, run)
    listing = runner("list", "-o", "json")
    assert listing.code == 0, listing.output
    assert [(r["id"], r["state"]) for r in json.loads(listing.stdout)] == [(run, "collecting")]
    (collector,) = db_row(home, run, "supervisor_pid")
    assert collector != supervisor, "a detached collector holds the claim, not the command"
    wait_for(lambda: pgid is not None and not process_exists(pgid), 10, "the orphaned job to be stopped")
    wait_for(lambda: not process_exists(collector), 30, "the collector to finish")
    assert status_of(run)["state"] == "lost"
    assert {f"outputs/d/{i}" for i in range(1, 301)} <= manifest_paths(store_dir(home, "lots", run))

    # a collector killed part way: its claim is stranded, the next command takes it over
    (store_dir(home, "lots", run) / "MANIFEST.json").unlink()
    (home / "runs" / run / "outputs" / "d").mkdir(parents=True)
    (home / "runs" / run / "outputs" / "d" / "again").write_text("again\n")
    db_set(home, run, state="collecting", supervisor_pid=dead_pid(), supervisor_start="1")
    doc = status_of(run)
    assert doc["state"] == "lost", doc
    assert "outputs/d/again" in manifest_paths(store_dir(home, "lots", run))


# 4. RUNNER_HOME's disk full


def test_a_full_runner_home_loses_neither_the_exit_code_nor_the_log(
    runner: Runner, job: Job, tmp_path: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmpfs("16m", "home")
    monkeypatch.setenv("RUNNER_HOME", str(home))
    go = tmp_path / "go"
    body = f"echo started; while [ ! -e {go} ]; do sleep 0.05; done; exit 3"
    run = runner("submit", "-d", str(job("filled", command=["sh", "-c", body]))).stdout.strip()
    wait_for(lambda: "started" in runner("logs", run).stdout, what="the job to start")
    filler = fill(home)
    go.touch()
    (supervisor,) = db_row(home, run, "supervisor_pid")
    elsewhere = {"RUNNER_STORE": (tmp_path / "elsewhere").as_uri()}  # only RUNNER_HOME is full
    other = runner("submit", str(job("another")), env=elsewhere)
    assert other.code != 0, other.output
    assert other.stderr.startswith("error: ") and "Traceback" not in other.output
    assert "No space left on device" in other.stderr or f"RUNNER_HOME ({home}) is full" in other.stderr
    for command in (("list",), ("status", run)):
        shown = runner(*command)
        assert "Traceback" not in shown.output, shown.output
    assert process_exists(supervisor), "the supervisor waits for room rather than dying"
    filler.unlink()
    doc = wait_for_state(run, "failed", timeout=60)
    assert doc["exitCode"] == 3
    assert (home / "store" / "filled" / run / "logs" / "attempt-1.log").read_text() == "started\n"


# 5. stale temporary files in a file:// store are removed


def test_stale_temporary_files_are_removed_after_a_collection(runner: Runner, job: Job, home: Path) -> None:
    old_run = home / "store" / "tidy" / "tidy-old001"
    old_run.mkdir(parents=True)
    stale = old_run / f".tmp-{'a' * 32}.part"
    fresh = home / "store" / "tidy" / f".tmp-{'b' * 32}.part"
    for path in (stale, fresh):
        path.write_bytes(b"half a model")
    two_days_ago = stale.stat().st_mtime - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    assert runner("submit", str(job("tidy", command=["true"]))).code == 0
    assert not stale.exists() and not old_run.exists(), "stale temporary files and their empty directory go"
    assert fresh.exists(), "a temporary file still being written stays"


# 7. cleaning up a lost run kills only the job's own process group


def test_cleaning_up_a_lost_run_leaves_a_reused_process_group_alone(
    runner: Runner, job: Job, home: Path
) -> None:
    run = runner(
        "submit", "-d", str(job("reused", command=["sh", "-c", "echo up; sleep 300"]))
    ).stdout.strip()
    wait_for(lambda: "up" in runner("logs", run).stdout, what="the job to start")
    _, pgid = kill_supervisor(home, run)
    assert pgid is not None
    os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not process_exists(pgid), 10, "the job to end")
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)  # another user's job, say
    try:
        db_set(home, run, job_pgid=bystander.pid, job_start="1")  # its pid was reused by the bystander
        assert status_of(run)["state"] == "lost"
        assert bystander.poll() is None, "an unrelated process group must not be killed"
    finally:
        bystander.kill()
        bystander.wait()


# 9. hard links out of the outputs are refused like symlinks


def test_a_hard_link_out_of_the_outputs_is_refused(
    runner: Runner, job: Job, home: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("do not collect\n")
    script = (
        f'ln {secret} "$RUNNER_OUTPUTS/secret"; '
        'if ln /etc/passwd "$RUNNER_OUTPUTS/passwd" 2>/dev/null; then :; fi; '
        'echo same > "$RUNNER_OUTPUTS/a"; ln "$RUNNER_OUTPUTS/a" "$RUNNER_OUTPUTS/b"'
    )
    result = runner("submit", str(job("linker", command=["sh", "-c", script])))
    assert result.code == 0, result.output
    run = submitted_run(result)
    store = store_dir(home, "linker", run)
    collected = manifest_paths(store)
    assert {"outputs/a", "outputs/b"} <= collected, "links inside the outputs are fine"
    assert "outputs/secret" not in collected and not (store / "outputs" / "secret").exists()
    assert "outputs/passwd" not in collected
    refused = {
        item["path"]: item["reason"] for item in json.loads((store / "run.json").read_text())["refused"]
    }
    assert refused["outputs/secret"].startswith("a hard link to a file outside outputs/")


# 13. setsid children do not outlive the run, its cancel or its timeout


@pytest.mark.parametrize("ending", ["exit", "timeout", "cancel"])
def test_setsid_children_are_stopped_with_the_run(
    runner: Runner, job: Job, tmp_path: Path, ending: str
) -> None:
    pidfile = tmp_path / "escaped.pid"
    escape = f"setsid sleep 300 & echo $! > {pidfile}; echo escaped"
    command = escape if ending == "exit" else f"{escape}; sleep 300"
    path = job("escape", command=["sh", "-c", command], **({"timeout": "2s"} if ending == "timeout" else {}))
    if ending == "cancel":
        run = runner("submit", "-d", str(path)).stdout.strip()
        wait_for(lambda: "escaped" in runner("logs", run).stdout, what="the child to escape")
        assert runner("cancel", run).code == 0
        expected = "cancelled"
    else:
        result = runner("submit", str(path))
        run = submitted_run(result)
        expected = "succeeded" if ending == "exit" else "timed-out"
    assert status_of(run)["state"] == expected
    escaped = int(pidfile.read_text())
    try:
        wait_for(lambda: not process_exists(escaped), 10, "the setsid child to be stopped")
    finally:
        if process_exists(escaped):
            os.kill(escaped, signal.SIGKILL)


# 18. a job that ended after its supervisor died is recorded as it ended


@pytest.mark.parametrize(("code", "state"), [(0, "succeeded"), (4, "failed")])
def test_a_job_ending_after_its_supervisor_died_keeps_its_outcome(
    runner: Runner, job: Job, home: Path, *, tmp_path: Path, code: int, state: str
) -> None:
    go = tmp_path / "go"
    body = f'echo up; while [ ! -e {go} ]; do sleep 0.05; done; echo out > "$RUNNER_OUTPUTS/out"; exit {code}'
    run = runner("submit", "-d", str(job("survivor", command=["sh", "-c", body]))).stdout.strip()
    wait_for(lambda: "up" in runner("logs", run).stdout, what="the job to start")
    _, pgid = kill_supervisor(home, run)
    go.touch()
    wait_for(lambda: pgid is not None and not process_exists(pgid), 10, "the job to end by itself")
    doc = status_of(run)
    assert (doc["state"], doc["exitCode"]) == (state, code), doc
    assert "supervisor stopped unexpectedly" in doc["message"]
    assert "outputs/out" in manifest_paths(store_dir(home, "survivor", run))
