"""The kubernetes backend through the real CLI: the image is built and pushed to the local registry, the
ConfigMap and Job are created in a fake API server (driven by the official client), kubectl sees them, and
status, pending reasons, completion, operator deletion and cancel are read back from the cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, status_of
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
    result = runner("submit", "--detach", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    return result.stdout.strip()


def test_submit_creates_the_job_that_kubectl_shows(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    run = submit(runner, job, cluster_env, "clustered", resources={"gpu": 1, "gpuType": "H100"})
    listed = kube.kubectl("get", "jobs", "-l", "app.kubernetes.io/managed-by=runner", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    names = [item["metadata"]["name"] for item in json.loads(listed.stdout)["items"]]
    assert names == [run]
    job_object = kube.server.get("jobs", run)
    container = job_object["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("127.0.0.1:5000/runner/clustered:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert status_of(run)["state"] == "pending"

    pod = kube.server.create_job_pod(run)
    kube.server.set_pod_unschedulable(
        pod["metadata"]["name"], "0/12 nodes are available: 12 Insufficient nvidia.com/gpu."
    )
    assert status_of(run)["message"] == "waiting: no node has 1 free H100 GPU"

    kube.server.set_pod_phase(pod["metadata"]["name"], "Running")
    running = status_of(run)
    assert (running["state"], running["message"]) == ("running", "running on fake-node-1")

    kube.server.patch_status(
        "jobs", run, {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    )
    assert status_of(run)["state"] == "succeeded"


def test_cancel_deletes_the_job_and_an_operator_delete_is_noticed(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    run = submit(runner, job, cluster_env, "stopped")
    assert runner("cancel", run).code == 0
    assert status_of(run)["state"] == "cancelled"
    assert kube.kubectl("get", "job", run).returncode != 0

    other = submit(runner, job, cluster_env, "deleted")
    assert kube.kubectl("delete", "job", other).returncode == 0
    doc = status_of(other)
    assert doc["state"] == "cancelled"
    assert "deleted outside the runner" in doc["message"]


def test_a_local_store_is_refused_before_anything_is_created(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_STORE")
    path = job("nostore", image={"base": cluster_env}, command=["true"])
    result = runner("submit", "--detach", str(path))
    assert result.code == 2
    assert "s3://" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(kube.kubectl("get", "jobs", "-o", "json").stdout)["items"] == []


def test_logs_are_followed_and_reconciled_after_the_pod_ends(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    import subprocess

    from tests.conftest import runner_command, wait_for

    run = submit(runner, job, cluster_env, "talky")
    pod = kube.server.create_job_pod(run)["metadata"]["name"]
    kube.server.set_pod_phase(pod, "Running")
    kube.server.set_log(pod, "line 1\nline 2\n")
    follower = subprocess.Popen(
        runner_command("logs", "-f", run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(
        lambda: any(
            r.path.endswith("/log") and r.query.get("follow") == "true" for r in kube.server.requests
        ),
        30,
        "the follow stream to open",
    )
    kube.server.append_log(pod, "line 3\n")
    kube.server.set_pod_phase(pod, "Succeeded", exit_code=0)
    kube.server.patch_status(
        "jobs", run, {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    )
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert out == "line 1\nline 2\nline 3\n"
    assert runner("logs", run).stdout == "line 1\nline 2\nline 3\n"


def test_api_errors_are_retried_and_never_duplicate_a_job(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    server_errors = kube.server.fail_next(2, 500, method="POST", path="/jobs$")
    throttled = kube.server.fail_next(1, 429, method="GET", path="/jobs/", retry_after=1)
    run = submit(runner, job, cluster_env, "flaky-api")
    assert server_errors.hits == 2
    assert status_of(run)["state"] == "pending"
    assert throttled.hits == 1
    jobs = json.loads(kube.kubectl("get", "jobs", "-o", "json").stdout)["items"]
    assert [item["metadata"]["name"] for item in jobs] == [run]


def test_a_submission_cut_before_its_job_exists_is_lost_not_pending_forever(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    kube.server.fail_next(50, 500, method="POST", path="/jobs$")  # outlasts the client's retries
    path = job("cut", image={"base": cluster_env}, command=["true"])
    failed = runner("submit", "--detach", str(path), timeout=600)
    assert failed.code == 1
    assert "Traceback" not in failed.stderr
    kube.server.clear_faults()
    (run,) = runner("list", "-o", "name").stdout.split()
    doc = status_of(run)
    assert doc["state"] == "lost"
    assert "before its Job was created" in doc["message"]
    assert json.loads(kube.kubectl("get", "jobs", "-o", "json").stdout)["items"] == []


def test_following_survives_dropped_watches_and_410_gone(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    import subprocess

    from tests.conftest import runner_command, wait_for

    run = submit(runner, job, cluster_env, "patient")
    follower = subprocess.Popen(
        runner_command("logs", "-f", run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(
        lambda: any(r.query.get("watch") in ("true", "1") for r in kube.server.requests), 30, "the pod watch"
    )
    kube.server.expire_history()
    kube.server.drop_watches()
    pod = kube.server.create_job_pod(run)["metadata"]["name"]
    kube.server.set_pod_phase(pod, "Running")
    kube.server.set_log(pod, "after the 410\n")
    kube.server.set_pod_phase(pod, "Succeeded", exit_code=0)
    kube.server.patch_status(
        "jobs", run, {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    )
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert out == "after the 410\n"
    assert "Traceback" not in err


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


def test_operators_see_runs_with_kubectl_and_a_suspend_is_noticed(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    run = submit(runner, job, cluster_env, "operated")
    described = kube.kubectl("describe", "job", run)
    assert described.returncode == 0, described.stderr
    assert f"runner.dev/run={run}" in described.stdout
    pod = kube.server.create_job_pod(run)["metadata"]["name"]
    kube.server.set_pod_phase(pod, "Running")
    kube.server.set_log(pod, "epoch 1 done\n")
    logs = kube.kubectl("logs", f"job/{run}")
    assert (logs.returncode, logs.stdout) == (0, "epoch 1 done\n")
    patched = kube.kubectl("patch", "job", run, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    assert patched.returncode == 0, patched.stderr
    assert status_of(run)["message"].startswith("suspended")
