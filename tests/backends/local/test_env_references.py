"""Secrets by reference on this machine (spec.env: {fromEnv: VAR} / {fromFile: PATH}): the job sees the
value, nothing the runner keeps does (runs.db, the work directory, the store's job.yaml and run.json);
what cannot work here is refused at submit with exit 2. Through the real `runner` command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import Result, store_dir, submitted_run

Runner = Callable[..., Result]
Job = Callable[..., Path]

SECRET_ENV = "s3cr3t-from-the-environment-7f1c"
SECRET_FILE = "s3cr3t-from-a-file-91ab"


def kept_files(home: Path) -> list[Path]:
    """Everything the runner writes for a run but the job's own logs and outputs (the job's business)."""
    return [path for path in home.rglob("*") if path.is_file() and not {"logs", "outputs"} & set(path.parts)]


def test_references_reach_the_job_and_nothing_the_runner_keeps(
    runner: Runner, job: Job, home: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(SECRET_FILE + "\n")
    token.chmod(0o600)
    path = job(
        "refs",
        command=["sh", "-c", 'printf "%s|%s" "$API_KEY" "$TOKEN" > "$RUNNER_OUTPUTS/seen"'],
        env={"API_KEY": {"fromEnv": "MY_API_KEY"}, "TOKEN": {"fromFile": str(token)}, "PLAIN": "visible"},
    )
    result = runner("submit", str(path), env={"MY_API_KEY": SECRET_ENV})
    assert result.code == 0, result.output
    run = submitted_run(result)
    # the job saw both values (the file's trailing newline dropped)
    assert (store_dir(home, "refs", run) / "outputs" / "seen").read_text() == f"{SECRET_ENV}|{SECRET_FILE}"
    stored = yaml.safe_load((store_dir(home, "refs", run) / "job.yaml").read_text())
    assert stored["spec"]["env"] == {
        "API_KEY": {"fromEnv": "MY_API_KEY"},
        "TOKEN": {"fromFile": str(token)},
        "PLAIN": "visible",
    }
    files = kept_files(home)
    assert {"runs.db", "job.yaml", "run.json", "MANIFEST.json"} <= {path.name for path in files}
    for kept in files:
        data = kept.read_bytes()
        assert SECRET_ENV.encode() not in data, kept
        assert SECRET_FILE.encode() not in data, kept


def test_a_reference_that_cannot_be_read_is_refused_at_submit(
    runner: Runner, job: Job, home: Path, tmp_path: Path
) -> None:
    unset = runner("submit", str(job("unset", env={"API_KEY": {"fromEnv": "RUNNER_TEST_NOT_SET_ANYWHERE"}})))
    assert unset.code == 2, unset.output
    assert "spec.env.API_KEY: fromEnv: the variable RUNNER_TEST_NOT_SET_ANYWHERE is not set" in unset.stderr
    assert "export RUNNER_TEST_NOT_SET_ANYWHERE" in unset.stderr

    missing = runner("submit", str(job("missing", env={"TOKEN": {"fromFile": str(tmp_path / "nope")}})))
    assert missing.code == 2, missing.output
    assert (
        f"spec.env.TOKEN: fromFile: cannot read {tmp_path / 'nope'}: No such file or directory"
        in missing.stderr
    )

    cluster = runner("submit", str(job("cluster", env={"DB": {"secretKeyRef": {"name": "db", "key": "pw"}}})))
    assert cluster.code == 2, cluster.output
    assert "spec.env.DB: secretKeyRef names a Kubernetes Secret, which the process backend cannot read" in (
        cluster.stderr
    )
    for result in (unset, missing, cluster):
        assert "Traceback" not in result.output
    assert runner("list").stdout.count("\n") <= 1  # nothing was started


def test_a_file_that_is_gone_when_the_attempt_starts_fails_the_attempt_clearly(
    runner: Runner, job: Job, home: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    # the first attempt removes the file; the retry cannot read it and says so in its log
    path = job(
        "gone",
        command=["sh", "-c", f'echo "got $TOKEN"; rm {token}; exit 1'],
        env={"TOKEN": {"fromFile": str(token)}},
        retries=1,
    )
    result = runner("submit", str(path))
    assert result.code != 0, result.output
    run = submitted_run(result)
    assert f"[{run}] got first" in result.stdout
    log = (store_dir(home, "gone", run) / "logs" / "attempt-2.log").read_text()
    assert f"runner: cannot start the attempt: spec.env.TOKEN: fromFile: cannot read {token}" in log


@pytest.mark.parametrize("backend", ["process"])
def test_render_keeps_references_as_written(runner: Runner, job: Job, backend: str) -> None:
    path = job("shown", env={"API_KEY": {"fromEnv": "MY_API_KEY"}})
    result = runner("render", str(path), env={"MY_API_KEY": SECRET_ENV})
    assert result.code == 0, result.output
    assert SECRET_ENV not in result.stdout
    assert yaml.safe_load(result.stdout)["spec"]["env"] == {"API_KEY": {"fromEnv": "MY_API_KEY"}}
