"""`runner render --kubernetes`: objects that kubectl accepts, and a clear refusal without an s3:// store."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from tests.conftest import REPO, Result

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
