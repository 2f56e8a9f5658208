"""The kubernetes backend through the real CLI against the fake API server, where it still earns its keep:
a store the pods cannot reach refused before anything is created, a submission whose Job create fails past
every retry (the fake server answers 500 as long as told) recorded lost, and runs found from another
machine's home by their labels. Submission, status, pending reasons, cancel, operator deletion and
suspension, log following and API errors are tested against the real control plane (tests/realcluster);
their fake-server versions were retired."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, status_of, submit_launched
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3  # noqa: F401  (fixtures)

Runner = Callable[..., Result]

pytestmark = pytest.mark.usefixtures("docker_client")


@pytest.fixture
def cluster_env(kube: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, python_base_image: str) -> str:  # noqa: F811
    monkeypatch.setenv("RUNNER_STORE", f"s3://{bucket}/runs")
    monkeypatch.setenv("RUNNER_REGISTRY", "127.0.0.1:5000")
    monkeypatch.setenv("RUNNER_BACKEND", "kubernetes")
    return python_base_image


def submit(runner: Runner, job: Callable[..., Path], base: str, name: str, **spec: Any) -> str:
    path = job(name, image={"base": base}, command=["sh", "-c", "echo hi"], **spec)
    result = submit_launched(str(path))
    assert result.code == 0, result.output[-3000:]
    return result.stdout.strip()


def test_a_local_store_is_refused_before_anything_is_created(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_STORE")
    path = job("nostore", image={"base": cluster_env}, command=["true"])
    result = runner("submit", "--detach", str(path))
    assert result.code == 2
    assert "s3://" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(kube.kubectl("get", "jobs", "-o", "json").stdout)["items"] == []


def test_a_submission_cut_before_its_job_exists_is_lost_not_pending_forever(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    kube.server.fail_next(50, 500, method="POST", path="/jobs$")  # outlasts the client's retries
    path = job("cut", image={"base": cluster_env}, command=["true"])
    failed = runner("submit", str(path), timeout=600)
    assert failed.code == 1
    assert "Traceback" not in failed.stderr
    kube.server.clear_faults()
    (run,) = runner("list", "-o", "name").stdout.split()
    doc = status_of(run)
    assert doc["state"] == "lost"
    assert "before its Job was created" in doc["message"]
    assert json.loads(kube.kubectl("get", "jobs", "-o", "json").stdout)["items"] == []


def test_runs_submitted_elsewhere_are_found_by_their_labels(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str, tmp_path: Path
) -> None:
    run = submit(runner, job, cluster_env, "elsewhere")
    other_home = {"RUNNER_HOME": str(tmp_path / "another-machine")}
    assert runner("list", "-o", "name", env=other_home).stdout == ""
    found = runner("list", "--cluster", "-o", "json", env=other_home)
    assert found.code == 0, found.stderr
    assert [(r["id"], r["backend"], r["state"]) for r in json.loads(found.stdout)] == [
        (run, "kubernetes", "pending")
    ]
    cancelled = runner("cancel", run, env=other_home)
    assert cancelled.code == 0, cancelled.stderr
    assert kube.kubectl("get", "job", run).returncode != 0
