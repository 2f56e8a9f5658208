"""The agent keeps the job's store after collecting: `latest`, then RUNNER_RETENTION (no runner attached)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.agent.settings import child_environment, parse_settings
from runner.store import Store, open_store
from runner.store.latest import read_latest, update_latest
from runner.store.retention import RetentionPolicy
from tests.agent.running import run_agent as agent
from tests.store.runs import put_run, run_ids
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3  # noqa: F401  (fixtures)

JOB = "nightly"
RUN = "nightly-k3x9q2"
LONG_AGO = 1_000_000_000.0  # 2001: older than any keepDays from now
REQUIRED = {"RUNNER_STORE": "file:///store", "RUNNER_JOB": JOB, "RUNNER_RUN_ID": RUN}


def run_agent(store_url: str, tmp_path: Path, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return agent(
        tmp_path, script, {"RUNNER_STORE": store_url, "RUNNER_JOB": JOB, "RUNNER_RUN_ID": RUN, **extra}
    )


def earlier_runs(store: Store, tmp_path: Path) -> None:
    """Two old complete runs, and an older one still being written (no MANIFEST.json)."""
    put_run(store, tmp_path, JOB, "nightly-writing", finished=None, complete=False)
    put_run(store, tmp_path, JOB, "nightly-old001", finished=LONG_AGO + 1)
    put_run(store, tmp_path, JOB, "nightly-old002", finished=LONG_AGO + 2)


def test_a_succeeded_pod_moves_latest_and_applies_retention(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    earlier_runs(store, tmp_path)
    done = run_agent(url, tmp_path, 'echo w > "$RUNNER_OUTPUTS/model.bin"', RUNNER_RETENTION="keepLast=2")
    assert done.returncode == 0, done.stderr
    assert read_latest(store, JOB) == RUN
    assert run_ids(store, JOB) == {RUN, "nightly-old002", "nightly-writing"}
    assert f"runner-agent: {JOB}/latest -> {RUN}" in done.stderr
    assert f"retention keepLast=2 deleted 1 old run of {JOB}: nightly-old001" in done.stderr
    assert "RUNNER_RETENTION" not in done.stdout


def test_a_failed_pod_leaves_latest_and_still_applies_retention(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    earlier_runs(store, tmp_path)
    done = run_agent(url, tmp_path, "exit 3", RUNNER_RETENTION="keepDays=30")
    assert done.returncode == 3
    assert read_latest(store, JOB) is None
    # both old runs finished in 2001; the failed run just now is kept, as is the run being written
    assert run_ids(store, JOB) == {RUN, "nightly-writing"}
    assert "latest" not in done.stderr


def test_a_bad_retention_value_is_a_warning_and_the_run_is_collected(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    earlier_runs(store, tmp_path)
    done = run_agent(url, tmp_path, "echo fine", RUNNER_RETENTION="keepLast=two")
    assert done.returncode == 0, done.stderr
    warning = (
        "runner-agent: warning: RUNNER_RETENTION: retention 'keepLast=two': keepLast needs a whole "
        "number from 1, got 'two'; use keepLast=N and/or keepDays=D"
    )
    assert done.stderr.count(warning) == 2  # before the command, and after collection where it is seen
    assert "old runs are not deleted" in done.stderr
    assert "Traceback" not in done.stderr
    assert read_latest(store, JOB) == RUN  # latest still moves: it needs no policy
    assert run_ids(store, JOB) == {RUN, "nightly-old001", "nightly-old002", "nightly-writing"}


def test_no_retention_deletes_nothing(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    earlier_runs(store, tmp_path)
    done = run_agent(url, tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert run_ids(store, JOB) == {RUN, "nightly-old001", "nightly-old002", "nightly-writing"}
    assert "runner-agent: retention" not in done.stderr


def test_a_pod_applies_retention_in_an_s3_store(bucket: str, tmp_path: Path) -> None:  # noqa: F811
    url = f"s3://{bucket}/runs"
    store = open_store(url)
    earlier_runs(store, tmp_path)
    done = run_agent(url, tmp_path, "true", RUNNER_RETENTION="keepLast=1")
    assert done.returncode == 0, done.stderr
    assert read_latest(store, JOB) == RUN
    assert run_ids(store, JOB) == {RUN, "nightly-writing"}


def test_retention_settings_are_parsed_and_kept_from_the_command() -> None:
    settings = parse_settings({**REQUIRED, "RUNNER_RETENTION": "keepLast=5,keepDays=30"})
    assert settings.retention == RetentionPolicy(keep_last=5, keep_days=30)
    assert settings.retention_problem is None
    assert "RUNNER_RETENTION" not in child_environment({"RUNNER_RETENTION": "keepLast=5"}, settings)
    assert parse_settings(REQUIRED).retention is None


@pytest.mark.parametrize("value", ["keepLast=0", "keepWeeks=2", "keepLast=1,keepLast=2", "5"])
def test_bad_retention_settings_are_a_problem_not_an_error(value: str) -> None:
    settings = parse_settings({**REQUIRED, "RUNNER_RETENTION": value})
    assert settings.retention is None
    assert settings.retention_problem is not None
    assert settings.retention_problem.startswith(f"RUNNER_RETENTION: retention {value!r}")


def test_a_pod_that_finished_earlier_never_moves_latest_back(tmp_path: Path) -> None:
    """A retried or slow pod collected after a newer run finished: latest stays on the newer one."""
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    put_run(store, tmp_path, JOB, "nightly-future", finished=4_000_000_000.0)  # finished after this pod will
    assert update_latest(store, JOB, "nightly-future", 4_000_000_000.0)
    done = run_agent(url, tmp_path, "true", RUNNER_RETENTION="keepLast=1")
    assert done.returncode == 0, done.stderr
    assert read_latest(store, JOB) == "nightly-future"
    assert "latest ->" not in done.stderr
    # keepLast=1 keeps the newer run; the run just collected is older and no pointer protects it
    assert run_ids(store, JOB) == {"nightly-future"}
    assert f"deleted 1 old run of {JOB}: {RUN}" in done.stderr
