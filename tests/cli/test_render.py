"""`runner render --kubernetes`: objects that kubectl accepts, a clear refusal without an s3:// store, and
exactly what `runner submit --backend kubernetes` sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, Result, submit_launched
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3  # noqa: F401  (fixtures)

Runner = Callable[..., Result]


def test_render_kubernetes_prints_the_configmap_and_job(runner: Runner) -> None:
    result = runner(
        "render",
        str(REPO / "jobs" / "mnist" / "job.yaml"),
        "--kubernetes",
        "--run-id",
        "mnist-abc123",
        env={"RUNNER_STORE": "s3://bucket/runs", "RUNNER_REGISTRY": "127.0.0.1:5000"},
    )
    assert result.code == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("ConfigMap", "mnist-abc123"),
        ("Job", "mnist-abc123"),
    ]
    container = documents[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("127.0.0.1:5000/runner/mnist:")
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["RUNNER_STORE"] == "s3://bucket/runs"
    assert env["RUNNER_RUN_ID"] == "mnist-abc123"


def test_render_kubernetes_needs_an_s3_store(runner: Runner) -> None:
    result = runner("render", str(REPO / "jobs" / "mnist" / "job.yaml"), "--kubernetes")
    assert result.code == 2
    assert "pods on a cluster collect into object storage" in result.stderr
    assert "RUNNER_STORE" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------- the dry run is what is sent


@pytest.fixture
def cluster_env(kube: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, python_base_image: str) -> str:  # noqa: F811
    """The settings of a cluster submit (the API server, the registry, an s3:// store); the base image."""
    monkeypatch.setenv("RUNNER_STORE", f"s3://{bucket}/runs")
    monkeypatch.setenv("RUNNER_REGISTRY", "127.0.0.1:5000")
    monkeypatch.setenv("RUNNER_STORE_SECRET", "runner-store")
    monkeypatch.setenv("RUNNER_GRACE", "2.5")
    return python_base_image


@pytest.mark.usefixtures("docker_client")
def test_the_dry_run_render_is_what_a_submit_sends(
    runner: Runner,
    job: Callable[..., Path],
    kube: Any,
    cluster_env: str,
    *,
    s3: Any,  # noqa: F811
    bucket: str,  # noqa: F811
) -> None:
    path = job(
        "rendered",
        image={"base": cluster_env},
        command=["sh", "-c", "echo $RUNNER_INPUT_DATA"],
        inputs=[{"name": "data", "source": "s3://datasets/rendered/", "path": "/data"}],
        resources={"gpu": 1, "gpuType": "H100", "memory": "1Gi"},
    )
    s3.put_object(Bucket=bucket, Key="elsewhere/data/part-0", Body=b"0\n")  # a submit lists it first
    override = f"data=s3://{bucket}/elsewhere/data/"
    submitted = submit_launched("--backend", "kubernetes", "--input", override, str(path))
    assert submitted.code == 0, submitted.output[-3000:]
    run = submitted.stdout.strip()
    sent = [
        request.body
        for request in kube.server.requests
        if request.method == "POST" and request.path.endswith(("/configmaps", "/jobs"))
    ]
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in sent] == [("ConfigMap", run), ("Job", run)]

    rendered = runner("render", "--kubernetes", "--run-id", run, "--input", override, "-o", "json", str(path))
    assert rendered.code == 0, rendered.stderr
    assert json.loads(rendered.stdout) == sent
    # Neither names a namespace of its own: both go to the kubeconfig context's, as kubectl would.
    assert {obj["metadata"]["namespace"] for obj in sent} == {kube.namespace}

    elsewhere = runner("render", "--kubernetes", "--run-id", run, "-n", "ml", "--input", override, str(path))
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(elsewhere.stdout)} == {"ml"}


@pytest.mark.usefixtures("docker_client")
def test_a_schedules_dry_run_is_what_its_apply_sends(
    runner: Runner, job: Callable[..., Path], kube: Any, cluster_env: str
) -> None:
    path = job("nightly", image={"base": cluster_env}, command=["true"], schedule={"cron": "0 2 * * *"})
    applied = runner("schedule", "apply", "--backend", "kubernetes", str(path), timeout=600)
    assert applied.code == 0, applied.output[-3000:]
    sent = [
        request.body
        for request in kube.server.requests
        if request.method == "POST" and request.path.endswith(("/configmaps", "/cronjobs"))
    ]
    assert [obj["kind"] for obj in sent] == ["ConfigMap", "CronJob"]

    dry = runner("schedule", "apply", "--backend", "kubernetes", "--dry-run", str(path))
    assert dry.code == 0, dry.stderr
    assert list(yaml.safe_load_all(dry.stdout)) == sent
    assert {obj["metadata"]["namespace"] for obj in sent} == {kube.namespace}
