"""The process backend end to end: the real `runner` command, real processes, a real file store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    Result,
    process_exists,
    runner_command,
    status_of,
    store_dir,
    submit_launched,
    submitted_run,
    wait_for,
    wait_for_state,
)

Runner = Callable[..., Result]
Job = Callable[..., Path]


def manifest_files(home: Path, job: str, run: str) -> dict[str, dict[str, object]]:
    data = json.loads((store_dir(home, job, run) / "MANIFEST.json").read_text())
    return {entry["path"]: entry for entry in data["files"]}


def test_submit_streams_logs_collects_outputs_and_exits_zero(runner: Runner, job: Job, home: Path) -> None:
    path = job(
        "hello",
        command=["sh", "-c", 'echo "out $RUNNER_JOB"; echo err >&2; echo 42 > "$RUNNER_OUTPUTS/answer.txt"'],
        env={"GREETING": 7},
    )
    result = runner("submit", str(path))
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert f"[{run}] out hello" in result.stdout
    assert f"[{run}] err" in result.stdout
    assert "succeeded" in result.stderr
    files = manifest_files(home, "hello", run)
    assert set(files) == {"outputs/answer.txt", "logs/attempt-1.log", "job.yaml", "run.json"}
    store = store_dir(home, "hello", run)
    assert (store / "outputs" / "answer.txt").read_text() == "42\n"
    assert (store / "logs" / "attempt-1.log").read_text() == "out hello\nerr\n"
    summary = json.loads((store / "run.json").read_text())
    assert summary["state"] == "succeeded"
    assert summary["exitCode"] == 0
    assert [attempt["exitCode"] for attempt in summary["attempts"]] == [0]
    assert "GREETING: '7'" in (store / "job.yaml").read_text()
    # the per-run copy of the context and outputs are tidied away; logs stay for `runner logs`
    assert not (home / "runs" / run / "context").exists()
    assert (home / "runs" / run / "logs" / "attempt-1.log").exists()


def test_job_runs_in_a_copy_of_its_context_with_its_environment(runner: Runner, job: Job, home: Path) -> None:
    path = job(
        "ctx",
        command=[
            "sh",
            "-c",
            'cat data.txt; test ! -e ignored.txt && echo "ignored ok"; pwd; touch made-here',
        ],
        env={"ANSWER": "42"},
    )
    (path.parent / "data.txt").write_text("from the context\n")
    (path.parent / "ignored.txt").write_text("x")
    (path.parent / ".dockerignore").write_text("ignored.txt\n")
    result = runner("submit", str(path))
    assert result.code == 0, result.output
    run = submitted_run(result)
    assert "from the context" in result.stdout
    assert "ignored ok" in result.stdout
    assert str(home / "runs" / run / "context") in result.stdout
    assert not (path.parent / "made-here").exists(), "the job must not write into the user's directory"


def test_failing_job_exits_with_its_code_and_is_collected(runner: Runner, job: Job, home: Path) -> None:
    path = job("fails", command=["sh", "-c", 'echo partial > "$RUNNER_OUTPUTS/p.txt"; echo boom; exit 3'])
    result = runner("submit", str(path))
    assert result.code == 3, result.output
    run = submitted_run(result)
    assert "failed" in result.stderr
    doc = status_of(run)
    assert (doc["state"], doc["exitCode"]) == ("failed", 3)
    assert (store_dir(home, "fails", run) / "outputs" / "p.txt").read_text() == "partial\n"
    assert "MANIFEST.json" in {p.name for p in store_dir(home, "fails", run).iterdir()}


def test_unknown_program_fails_with_127_and_says_why(runner: Runner, job: Job) -> None:
    result = runner("submit", str(job("noprog", command=["no-such-program-xyz"])))
    assert result.code == 127, result.output
    assert "cannot start 'no-such-program-xyz'" in result.stdout


def test_retries_with_backoff_until_an_attempt_succeeds(runner: Runner, job: Job, home: Path) -> None:
    path = job(
        "flaky",
        command=["sh", "-c", 'echo "attempt $RUNNER_ATTEMPT"; test "$RUNNER_ATTEMPT" -ge 3'],
        retries=3,
    )
    result = runner("submit", str(path))
    assert result.code == 0, result.output
    run = submitted_run(result)
    doc = status_of(run)
    assert (doc["state"], doc["attempts"], doc["maxAttempts"]) == ("succeeded", 3, 4)
    files = manifest_files(home, "flaky", run)
    assert {"logs/attempt-1.log", "logs/attempt-2.log", "logs/attempt-3.log"} <= set(files)
    logs = runner("logs", run)
    assert logs.stdout == "attempt 1\nattempt 2\nattempt 3\n"
    assert runner("logs", run, "--attempt", "2").stdout == "attempt 2\n"
    summary = json.loads((store_dir(home, "flaky", run) / "run.json").read_text())
    assert [a["exitCode"] for a in summary["attempts"]] == [1, 1, 0]


def test_retries_run_out(runner: Runner, job: Job) -> None:
    result = runner("submit", str(job("hopeless", command=["sh", "-c", "exit 5"], retries=1)))
    assert result.code == 5
    doc = status_of(submitted_run(result))
    assert (doc["state"], doc["attempts"]) == ("failed", 2)
    assert "after 2 attempts" in doc["message"]


def test_timeout_stops_the_whole_process_group(runner: Runner, job: Job, home: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    path = job(
        "slow",
        command=["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started; wait"],
        timeout="1s",
    )
    result = runner("submit", str(path))
    assert result.code == 124, result.output
    run = submitted_run(result)
    doc = status_of(run)
    assert doc["state"] == "timed-out"
    assert "timeout of 1s" in doc["message"]
    assert not process_exists(int(pidfile.read_text())), "the background child must be killed too"
    assert (store_dir(home, "slow", run) / "logs" / "attempt-1.log").read_text() == "started\n"


def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(runner: Runner, job: Job) -> None:
    path = job("stubborn", command=["sh", "-c", "trap '' TERM; echo ignoring; sleep 300"], timeout="1s")
    result = runner("submit", str(path))
    assert result.code == 124, result.output
    summary = status_of(submitted_run(result))
    assert summary["state"] == "timed-out"
    assert summary["exitCode"] == 128 + signal.SIGKILL


def test_detach_then_cancel_from_another_command(runner: Runner, job: Job, home: Path) -> None:
    path = job("longrun", command=["sh", "-c", 'echo working; echo x > "$RUNNER_OUTPUTS/x"; sleep 300'])
    submitted = runner("submit", "--detach", str(path))
    assert submitted.code == 0, submitted.output
    run = submitted.stdout.strip()
    assert run.startswith("longrun-")
    wait_for_state(run, "running")
    wait_for(lambda: "working" in runner("logs", run).stdout, what="the first log line")
    cancelled = runner("cancel", run)
    assert cancelled.code == 0, cancelled.output
    assert f"run {run} cancelled" in cancelled.stdout
    doc = status_of(run)
    assert doc["state"] == "cancelled"
    assert (store_dir(home, "longrun", run) / "outputs" / "x").exists()
    assert "already cancelled" in runner("cancel", run).stdout


def test_ctrl_c_on_submit_cancels_the_run(job: Job, home: Path) -> None:
    path = job("interrupted", command=["sh", "-c", "echo ready; sleep 300"])
    process = subprocess.Popen(
        runner_command("submit", str(path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    assert "ready" in first
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    run = first.split("]")[0].lstrip("[")
    assert status_of(run)["state"] == "cancelled"
    assert "cancelling run" in err.decode()


def test_follow_logs_from_another_terminal(runner: Runner, job: Job) -> None:
    path = job("chatty", command=["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"])
    run = runner("submit", "-d", str(path)).stdout.strip()
    followed = runner("logs", "-f", run)
    assert followed.code == 0
    assert followed.stdout == "line 1\nline 2\nline 3\n"
    assert status_of(run)["state"] == "succeeded"


def test_a_killed_supervisor_leaves_a_lost_run_not_a_running_one(
    runner: Runner, job: Job, home: Path
) -> None:
    path = job("orphan", command=["sh", "-c", 'echo before; echo o > "$RUNNER_OUTPUTS/o"; sleep 300'])
    run = runner("submit", "-d", str(path)).stdout.strip()
    wait_for(lambda: "before" in runner("logs", run).stdout, what="the job to start")
    import sqlite3

    with sqlite3.connect(home / "runs.db") as db:
        supervisor, pgid = db.execute(
            "SELECT supervisor_pid, job_pgid FROM runs WHERE id = ?", (run,)
        ).fetchone()
    import os

    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not process_exists(supervisor), 10, "the supervisor to die")
    doc = status_of(run)
    assert doc["state"] == "lost"
    assert "stopped unexpectedly" in doc["message"]
    wait_for(lambda: not process_exists(pgid), 10, "the orphaned job to be stopped")
    files = manifest_files(home, "orphan", run)
    assert {"outputs/o", "logs/attempt-1.log", "run.json"} <= set(files)
    listing = runner("list", "-o", "json")
    assert [(r["id"], r["state"]) for r in json.loads(listing.stdout)] == [(run, "lost")]


def test_concurrent_runs_never_share_a_gpu(
    runner: Runner, job: Job, home: Path, fake_gpus: Callable[..., None]
) -> None:
    fake_gpus(2)
    record = 'echo "$CUDA_VISIBLE_DEVICES" > "$RUNNER_OUTPUTS/devices"; sleep 1'
    runs = [
        runner(
            "submit", "-d", str(job(f"gpu{i}", command=["sh", "-c", record], resources={"gpu": 1}))
        ).stdout.strip()
        for i in range(2)
    ]
    for run in runs:
        wait_for_state(run, "succeeded")
    devices = sorted(
        (store_dir(home, run.rsplit("-", 1)[0], run) / "outputs" / "devices").read_text() for run in runs
    )
    assert devices == ["0\n", "1\n"]


def test_a_run_waits_for_a_busy_gpu(
    runner: Runner, job: Job, home: Path, fake_gpus: Callable[..., None], tmp_path: Path
) -> None:
    fake_gpus(1)
    release = tmp_path / "release"
    holding = f"until [ -e {release} ]; do sleep 0.05; done"
    first = runner("submit", "-d", str(job("holder", command=["sh", "-c", holding], resources={"gpu": 1})))
    run1 = first.stdout.strip()
    wait_for_state(run1, "running")
    second = submit_launched(
        str(job("waiter", command=["sh", "-c", "echo got $CUDA_VISIBLE_DEVICES"], resources={"gpu": 1})),
    )
    run2 = second.stdout.strip()
    waiting = status_of(run2)
    assert waiting["state"] == "pending"
    assert "waiting for 1 free GPU" in waiting["message"]
    release.touch()
    wait_for_state(run2, "succeeded")
    assert status_of(run1)["state"] == "succeeded"
    assert runner("logs", run2).stdout == "got 0\n"
    finished = [status_of(run1)["finished"], status_of(run2)["started"]]
    assert finished[0] <= finished[1], "the second run started only once the GPU was free"


def test_asking_for_more_gpus_than_exist_fails_at_submit(
    runner: Runner, job: Job, home: Path, fake_gpus: Callable[..., None]
) -> None:
    fake_gpus(2)
    result = runner("submit", str(job("greedy", resources={"gpu": 4})))
    assert result.code == 2
    assert "asks for 4 GPU(s); this machine has 2 GPUs (NVIDIA H100 80GB HBM3)" in result.stderr
    assert "Traceback" not in result.output
    assert runner("list", "-o", "name").stdout == ""


def test_no_gpu_machine_says_so(
    runner: Runner, job: Job, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi anywhere
    result = runner("submit", str(job("wantsgpu", resources={"gpu": 1, "gpuType": "H100"})))
    assert result.code == 2
    assert "asks for 1 H100 GPU(s); this machine has no GPU (nvidia-smi found none)" in result.stderr


def test_inputs_are_passed_and_checked(runner: Runner, job: Job, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("input!")
    path = job(
        "reader",
        command=["sh", "-c", 'cat "$RUNNER_INPUT_CELLS/x.txt"'],
        inputs=[{"name": "cells", "source": "missing-dir", "path": "/data"}],
    )
    missing = runner("submit", str(path))
    assert missing.code == 2
    assert "input 'cells'" in missing.stderr and "does not exist" in missing.stderr
    assert "--input NAME=PATH" in missing.stderr
    result = runner("submit", str(path), "--input", f"cells={data}")
    assert result.code == 0, result.output
    assert "input!" in result.stdout
    unknown = runner("submit", str(path), "--input", "nope=/tmp")
    assert unknown.code == 2 and "no such input (its inputs: cells)" in unknown.stderr


def test_a_symlink_out_of_the_outputs_is_refused(runner: Runner, job: Job, home: Path) -> None:
    path = job(
        "sneaky",
        command=["sh", "-c", 'ln -s /etc/passwd "$RUNNER_OUTPUTS/passwd"; echo ok > "$RUNNER_OUTPUTS/fine"'],
    )
    result = runner("submit", str(path))
    assert result.code == 0, result.output
    run = submitted_run(result)
    files = manifest_files(home, "sneaky", run)
    assert "outputs/passwd" not in files and "outputs/fine" in files
    assert not (store_dir(home, "sneaky", run) / "outputs" / "passwd").exists()
    refused = json.loads((store_dir(home, "sneaky", run) / "run.json").read_text())["refused"]
    assert refused == [
        {"path": "outputs/passwd", "reason": "symlink points outside outputs/ (to /etc/passwd)"}
    ]


def test_artifacts_list_and_download_verify_checksums(
    runner: Runner, job: Job, home: Path, tmp_path: Path
) -> None:
    path = job(
        "arts",
        command=["sh", "-c", 'mkdir -p "$RUNNER_OUTPUTS/m"; echo weights > "$RUNNER_OUTPUTS/m/model.bin"'],
    )
    run = submitted_run(runner("submit", str(path)))
    listing = runner("artifacts", run, "-o", "json")
    files = {entry["path"]: entry for entry in json.loads(listing.stdout)["files"]}
    assert files["outputs/m/model.bin"]["size"] == len("weights\n")
    table = runner("artifacts", "arts")  # a job name means its latest run
    assert "outputs/m/model.bin" in table.stdout and "PATH" in table.stdout
    target = tmp_path / "download"
    done = runner("artifacts", run, "--download", str(target))
    assert done.code == 0, done.output
    assert (target / "outputs" / "m" / "model.bin").read_text() == "weights\n"
    # a damaged stored copy is detected, and the damaged download removed
    (store_dir(home, "arts", run) / "outputs" / "m" / "model.bin").write_text("tampered\n")
    damaged = runner("artifacts", run, "--download", str(tmp_path / "again"))
    assert damaged.code == 1
    assert "checksum mismatch" in damaged.stderr
    assert not (tmp_path / "again" / "outputs" / "m" / "model.bin").exists()


def test_list_and_status_for_scripts(runner: Runner, job: Job) -> None:
    runs = [submitted_run(runner("submit", str(job("listed", command=["true"])))) for _ in range(2)]
    names = runner("list", "-o", "name").stdout.split()
    assert names == runs[::-1], "newest first"
    table = runner("list").stdout.splitlines()
    assert table[0].split() == ["RUN", "JOB", "STATE", "BACKEND", "ATTEMPTS", "EXIT", "DURATION", "AGE"]
    yaml_doc = runner("status", runs[0], "-o", "yaml").stdout
    assert f"id: {runs[0]}" in yaml_doc and "state: succeeded" in yaml_doc
    text = runner("status", runs[0][: len(runs[0]) - 2]).stdout if runs[0][:-2] != runs[1][:-2] else ""
    assert text == "" or "Run:" in text
    missing = runner("status", "no-such-run")
    assert missing.code == 1
    assert "no run or job named 'no-such-run'" in missing.stderr and "Traceback" not in missing.stderr


def test_a_cancel_sent_while_the_supervisor_starts_cancels_the_run(job: Job, home: Path) -> None:
    """The supervisor is SIGTERMed the moment it exists, before it could install its handlers: the
    signal waits (blocked) until it can handle it, and the run is cancelled, not lost."""
    from runner.backends.local.process import ProcessBackend
    from runner.config import load_settings
    from runner.records import RunRecords
    from runner.service.plan import plan_run
    from runner.spec import load_manifest

    plan = plan_run(load_manifest(job("early", command=["sleep", "60"])), {})
    settings = load_settings()
    records = RunRecords(settings.database)
    try:
        launched = ProcessBackend().launch(plan, records, settings)
        os.kill(launched.supervisor_pid or 0, signal.SIGTERM)
        done = wait_for_state(launched.id, "cancelled", "lost", "failed", "succeeded")
        assert (done["state"], done["message"]) == ("cancelled", "cancelled"), done
    finally:
        records.close()
