"""What a new user met first (issue 14), each through the real command."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Result, runner_command, submitted_run, wait_for_state

Runner = Callable[..., Result]


def refused_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def unreachable_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """KUBECONFIG naming an API server that refuses connections; its URL."""
    url = f"http://127.0.0.1:{refused_port()}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "current-context": "gone",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    yield url


def stuck_cluster_record(home: Path, run_id: str = "demo-stuck1") -> str:
    """The record an earlier failed `--backend kubernetes` submit left: pending, its Job never created."""
    from runner.records import RunRecord, RunRecords, RunState

    records = RunRecords(home / "runs.db")
    records.create(
        RunRecord(
            id=run_id,
            job="demo",
            backend="kubernetes",
            state=RunState.PENDING,
            created=4102444800.0,  # newest: `demo` resolves to it
            workdir="",
            store_url="s3://bucket/runs",
            manifest="",
            launch={"namespace": "default", "context": None, "created": False, "image": None},
            message="submitting",
        )
    )
    records.close()
    return run_id


# ---------------------------------------------------------------- 1: an unreachable cluster


def test_an_unreachable_cluster_does_not_break_local_runs(
    runner: Runner, job: Callable[..., Path], home: Path, unreachable_cluster: str
) -> None:
    local = runner("submit", str(job()))
    assert local.code == 0, local.output
    local_run = submitted_run(local)
    stuck = stuck_cluster_record(home)

    listed = runner("list")
    assert listed.code == 0, listed.output
    assert local_run in listed.stdout and stuck in listed.stdout
    assert "Traceback" not in listed.stderr
    warnings = [line for line in listed.stderr.splitlines() if "kubernetes" in line]
    assert len(warnings) == 1, listed.stderr  # the cluster named once
    assert unreachable_cluster.removeprefix("http://") in warnings[0]

    shown = runner("status", local_run, "-o", "json")
    assert shown.code == 0 and json.loads(shown.stdout)["state"] == "succeeded", shown.output
    assert runner("cancel", local_run).code == 0

    # the stuck record itself: shown as last recorded, and cancelled, since nothing of it was created
    assert runner("status", "demo").code == 0
    cancelled = runner("cancel", stuck)
    assert cancelled.code == 0, cancelled.output
    assert "Traceback" not in cancelled.output
    assert json.loads(runner("status", stuck, "-o", "json").stdout)["state"] == "cancelled"


def test_a_refused_connection_is_one_line_without_debug(
    runner: Runner, home: Path, unreachable_cluster: str
) -> None:
    run = stuck_cluster_record(home)
    from runner.records import RunRecords

    records = RunRecords(home / "runs.db")
    records.update(run, launch={"namespace": "default", "context": None, "created": True})
    records.close()
    result = runner("cancel", run)  # its Job may exist: the cluster must be asked, and cannot be
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "Connection refused" in result.stderr and len(result.stderr.splitlines()) <= 3, result.stderr
    assert "Traceback" in runner("--debug", "cancel", run).stderr


# ---------------------------------------------------------------- 2: cluster prerequisites, all at once


def test_a_cluster_submit_reports_every_missing_prerequisite_before_building(
    runner: Runner, job: Callable[..., Path], home: Path, unreachable_cluster: str
) -> None:
    result = runner(
        "submit",
        "--backend",
        "kubernetes",
        str(job()),
        env={"RUNNER_REGISTRY": "", "RUNNER_STORE_SECRET": "", "RUNNER_STORE": ""},
    )
    assert result.code == 2, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    for missing in ("Connection refused", "RUNNER_STORE=s3://", "RUNNER_REGISTRY"):
        assert missing in result.stderr, result.stderr
    assert "build" not in result.stderr.lower().replace("nothing was built", "")
    assert "Traceback" not in result.stderr
    listed = runner("list", "-o", "json")
    assert json.loads(listed.stdout) == []  # nothing recorded


def test_unreachable_store_and_registry_are_reported(
    runner: Runner, job: Callable[..., Path], unreachable_cluster: str
) -> None:
    port = refused_port()
    result = runner(
        "submit",
        "--backend",
        "kubernetes",
        str(job()),
        env={
            "RUNNER_REGISTRY": f"127.0.0.1:{port}",
            "RUNNER_STORE": "s3://runner-bucket/runs",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "RUNNER_STORE_SECRET": "runner-store",
        },
    )
    assert result.code == 2, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr  # cluster, store, registry
    assert "artifact store" in result.stderr and f"RUNNER_REGISTRY=127.0.0.1:{port}" in result.stderr


# ---------------------------------------------------------------- 3: requirements the process backend ignores


def test_validate_reports_a_requirements_file_that_does_not_exist(
    runner: Runner, job: Callable[..., Path]
) -> None:
    path = job("needy", image={"requirements": "requirements.txt"})
    result = runner("validate", str(path))
    assert result.code == 0, result.output  # valid: the process backend can still run it
    assert "warning" in result.stderr and "spec.image.requirements" in result.stderr
    assert "'requirements.txt' is not a file" in result.stderr
    (path.parent / "requirements.txt").write_text("numpy\n")
    found = runner("validate", str(path))
    assert found.code == 0 and found.stderr == "", found.output


# ---------------------------------------------------------------- 5: render without the cluster settings


def test_render_kubernetes_warns_on_stderr_and_keeps_stdout_yaml(
    runner: Runner, job: Callable[..., Path]
) -> None:
    result = runner(
        "render",
        "--kubernetes",
        str(job()),
        "--image",
        "example/demo:1",
        env={"RUNNER_STORE": "s3://runner-bucket/runs", "RUNNER_REGISTRY": "", "RUNNER_STORE_SECRET": ""},
    )
    assert result.code == 0, result.output
    assert "RUNNER_REGISTRY" in result.stderr and "RUNNER_STORE_SECRET" in result.stderr
    kinds = [document["kind"] for document in yaml.safe_load_all(result.stdout)]
    assert kinds == ["ConfigMap", "Job"]
    quiet = runner(
        "render",
        "--kubernetes",
        str(job()),
        "--image",
        "example/demo:1",
        env={
            "RUNNER_STORE": "s3://runner-bucket/runs",
            "RUNNER_REGISTRY": "127.0.0.1:5000",
            "RUNNER_STORE_SECRET": "runner-store",
        },
    )
    assert quiet.code == 0 and "warning" not in quiet.stderr, quiet.output


# ---------------------------------------------------------------- 6: refused outputs are said


def test_refused_outputs_are_said_by_submit_status_and_artifacts(
    runner: Runner, job: Callable[..., Path]
) -> None:
    path = job(
        "sneaky",
        command=["sh", "-c", 'ln -s /etc/passwd "$RUNNER_OUTPUTS/passwd"; echo x > "$RUNNER_OUTPUTS/ok"'],
    )
    submitted = runner("submit", str(path))
    assert submitted.code == 0, submitted.output
    run = submitted_run(submitted)
    assert "outputs/passwd" in submitted.stderr and "refused" in submitted.stderr
    shown = runner("status", run)
    assert "Refused" in shown.stdout and "outputs/passwd" in shown.stderr
    document = json.loads(runner("status", run, "-o", "json").stdout)
    assert [item["path"] for item in document["refused"]] == ["outputs/passwd"]
    listed = runner("artifacts", run)
    assert "outputs/passwd" in listed.stderr and "outputs/ok" in listed.stdout
    data = json.loads(runner("artifacts", run, "-o", "json").stdout)
    assert [item["path"] for item in data["refused"]] == ["outputs/passwd"]


# ---------------------------------------------------------------- 7: an attempt that does not exist


def test_logs_of_an_attempt_that_does_not_exist(runner: Runner, job: Callable[..., Path]) -> None:
    run = submitted_run(runner("submit", str(job())))
    result = runner("logs", run, "--attempt", "2")
    assert result.code == 1
    assert result.stdout == "" and f"run {run} has no attempt 2: it has 1 attempt" in result.stderr
    assert runner("logs", run, "--attempt", "1").stdout == "hello\n"


# ---------------------------------------------------------------- 8, 13: Ctrl-C


def test_ctrl_c_on_logs_follow_exits_130(runner: Runner, job: Callable[..., Path]) -> None:
    path = job("waiting", command=["sh", "-c", "echo ready; sleep 300"])
    run = runner("submit", "-d", str(path)).stdout.strip()
    process = subprocess.Popen(
        runner_command("logs", "-f", run), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert "ready" in process.stdout.readline().decode()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err.decode()
        assert "Aborted!" not in err.decode() and "Traceback" not in err.decode()
    finally:
        process.kill()
        assert runner("cancel", run).code == 0


def test_ctrl_c_on_submit_drains_the_jobs_last_lines(job: Callable[..., Path]) -> None:
    script = "trap 'echo last words; exit 143' TERM; echo ready; while true; do sleep 0.1; done"
    path = job("chatty", command=["sh", "-c", script])
    process = subprocess.Popen(
        runner_command("submit", str(path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert "ready" in process.stdout.readline().decode()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert "last words" in out.decode(), (out, err)
    assert out.decode().count("ready") == 0  # nothing written twice


# ---------------------------------------------------------------- 10: list --job of a job with no runs


def test_list_of_a_job_without_runs_says_so(runner: Runner, job: Callable[..., Path]) -> None:
    assert runner("submit", str(job())).code == 0
    result = runner("list", "--job", "nosuch")
    assert result.code == 0 and result.stdout == ""
    assert "No runs of job 'nosuch'" in result.stderr and "No runs yet" not in result.stderr


# ---------------------------------------------------------------- 11, 17: schedules


def test_schedule_history_is_in_the_schedules_zone(runner: Runner, job: Callable[..., Path]) -> None:
    path = job("nightly", schedule={"cron": "0 2 * * *", "timeZone": "Asia/Seoul"})
    assert runner("schedule", "apply", str(path)).code == 0
    run = runner("schedule", "trigger", "nightly").stdout.strip()
    wait_for_state(run, "succeeded", "failed")
    history = runner("schedule", "history", "nightly")
    assert history.code == 0, history.output
    slot = history.stdout.splitlines()[1].split()[0]
    assert slot.endswith("+09:00"), history.stdout
    assert "+09:00" in runner("schedule", "list").stdout or "KST" in runner("schedule", "list").stdout


def test_schedule_apply_namespace_help_names_the_backend_not_cluster(runner: Runner) -> None:
    result = runner("schedule", "apply", "--help")
    assert result.code == 0
    assert "With --cluster" not in result.stdout
    assert "--backend kubernetes" in result.stdout.split("--namespace", 1)[1]


# ---------------------------------------------------------------- 12: the retry backoff is said


def test_the_retry_backoff_is_said_in_the_followed_stream(
    runner: Runner, job: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_BACKOFF", "1")
    path = job("flaky", command=["sh", "-c", "echo try; exit 1"], retries=1)
    result = runner("submit", str(path))
    assert result.code == 1
    assert "attempt 1 exited with code 1; retrying in 1s" in result.stderr, result.stderr


# ---------------------------------------------------------------- 15: artifacts of a job, one file


def test_artifacts_of_a_job_is_its_latest_succeeded_run(
    runner: Runner, job: Callable[..., Path], tmp_path: Path
) -> None:
    good = job("model", command=["sh", "-c", 'echo 0.93 > "$RUNNER_OUTPUTS/score.txt"'])
    succeeded = submitted_run(runner("submit", str(good)))
    bad = job("model", command=["sh", "-c", "exit 3"])
    failed = runner("submit", str(bad))
    assert failed.code == 3
    newest = submitted_run(failed)

    listed = runner("artifacts", "model")
    assert listed.code == 0, listed.output
    assert "outputs/score.txt" in listed.stdout
    assert succeeded in listed.stderr and newest in listed.stderr  # which run, and why not the newest

    one = runner("artifacts", "model", "--file", "outputs/score.txt")
    assert one.code == 0 and one.stdout == "0.93\n", one.output
    into = tmp_path / "got"
    copied = runner("artifacts", "model", "--file", "outputs/score.txt", "--download", str(into))
    assert copied.code == 0, copied.output
    assert sorted(p.name for p in into.rglob("*") if p.is_file()) == ["score.txt"]
    missing = runner("artifacts", "model", "--file", "outputs/nope.txt")
    assert missing.code == 1 and "no file 'outputs/nope.txt'" in missing.stderr


def test_artifacts_of_a_job_that_never_succeeded(runner: Runner, job: Callable[..., Path]) -> None:
    assert runner("submit", str(job("broken", command=["sh", "-c", "exit 3"]))).code == 3
    result = runner("artifacts", "broken")
    assert result.code == 1
    assert "job broken has no succeeded run" in result.stderr


# ---------------------------------------------------------------- 14: which image a run used


def test_status_names_the_image_a_run_used(runner: Runner, home: Path) -> None:
    from runner.backends.local.attempts import summary
    from runner.records import RunRecords, RunState

    run = stuck_cluster_record(home)
    records = RunRecords(home / "runs.db")
    image = "127.0.0.1:5000/runner/demo:0123456789abcdef0123"
    record = records.update(
        run,
        state=RunState.SUCCEEDED,
        launch={"namespace": "default", "created": True, "image": image},
    )
    records.close()
    shown = runner("status", run)
    assert shown.code == 0 and "Image:" in shown.stdout and image in shown.stdout, shown.output
    document = json.loads(runner("status", run, "-o", "json").stdout)
    assert document["image"]["reference"] == image
    assert summary(record, None)["image"]["reference"] == image  # run.json of a local container run
