"""The mission on a real control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(scripts/cluster.sh), with GPU nodes from the node agent whose pods run as Docker containers.

`runner submit jobs/mnist/job.yaml --backend kubernetes` (gpu: 1, gpuType: H100) is admitted under the
restricted Pod Security level, bound by kube-scheduler to an H100 node, trains in a container, streams its
log through the API server from the agent's kubelet endpoint, and collects into s3 (moto's server); kubectl
shows the Job Complete, and `runner artifacts --download` brings back models that predict.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, status_of, submitted_run
from tests.jobs.formats import check_artifacts
from tests.support.nodeagent import NodeAgent
from tests.support.realcluster import H100, RESTRICTED, RealKube

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

Runner = Callable[..., Result]


def on_a_gpu(manifest: Path) -> None:
    """The example runs on CPU by default; its comment says to ask for a GPU on a GPU node: do that."""
    text = manifest.read_text()
    assert "resources: {gpu: 0," in text
    manifest.write_text(text.replace("resources: {gpu: 0,", "resources: {gpu: 1, gpuType: H100,"))


def condition(job: dict[str, Any], kind: str) -> bool:
    return any(
        item["type"] == kind and item["status"] == "True"
        for item in (job.get("status") or {}).get("conditions") or []
    )


@pytest.mark.tensorflow
@pytest.mark.usefixtures("home", "tensorflow_base_image")
def test_mnist_trains_on_a_real_control_plane_and_its_model_comes_back(
    runner: Runner,
    tmp_path: Path,
    real_kube: RealKube,
    gpu_nodes: NodeAgent,
    real_store: str,
    *,
    s3: Any,
    example_wheelhouse: Path,
) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_wheelhouse, jobs / "wheelhouse")
    on_a_gpu(jobs / "mnist" / "job.yaml")

    result = runner("submit", "--backend", "kubernetes", str(jobs / "mnist" / "job.yaml"), timeout=1500)
    assert result.code == 0, result.output[-4000:]
    run = submitted_run(result)

    # The training log streamed to the terminal through the API server, from the agent's kubelet endpoint.
    assert re.search(rf"^\[{run}\] .*[Ee]poch 5/5", result.stdout, re.MULTILINE), result.stdout[-3000:]
    assert re.search(rf"^\[{run}\] ==> test: +accuracy=0\.\d+", result.stdout, re.MULTILINE), result.stdout[
        -3000:
    ]

    # kube-scheduler bound it to an H100 node: the toleration of the GPU taint and the product affinity.
    (pod,) = real_kube.pods_of(run)
    assert pod["spec"]["nodeName"] in gpu_nodes.specs
    node = real_kube.get(real_kube.core.read_node, pod["spec"]["nodeName"])
    assert node is not None and node["metadata"]["labels"]["nvidia.com/gpu.product"] == H100
    assert "affinity" in pod["spec"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    scheduled = [
        event
        for event in real_kube.events(**{"involvedObject.name": pod["metadata"]["name"]})
        if event["reason"] == "Scheduled"
    ]
    assert [event.get("reportingComponent") or event["source"].get("component") for event in scheduled] == [
        "default-scheduler"
    ], scheduled
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    # The namespace enforces the restricted level, and the pod was admitted to it.
    namespace = real_kube.get(real_kube.core.read_namespace, real_kube.namespace)
    assert namespace is not None and RESTRICTED.items() <= namespace["metadata"]["labels"].items()

    # kubectl shows a complete Job; kubectl logs reads the pod's log through the API server.
    listed = real_kube.kubectl("get", "jobs", "-l", f"runner.dev/run={run}", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (job,) = json.loads(listed.stdout)["items"]
    assert condition(job, "Complete") and job["status"]["succeeded"] == 1
    table = real_kube.kubectl("get", "jobs")
    assert re.search(rf"^{run}\s+Complete\s+1/1", table.stdout, re.MULTILINE), table.stdout
    logs = real_kube.kubectl("logs", f"job/{run}", "--tail", "50")
    assert logs.returncode == 0, logs.stderr
    assert "accuracy=" in logs.stdout

    # The store holds the complete run: the full log, the metrics, every model format.
    prefix = f"runs/mnist/{run}/"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=real_store, Prefix=prefix)["Contents"]}
    assert {f"{prefix}MANIFEST.json", f"{prefix}logs/attempt-1.log", f"{prefix}outputs/metrics.json"} <= keys
    log = s3.get_object(Bucket=real_store, Key=f"{prefix}logs/attempt-1.log")["Body"].read().decode()
    assert "Epoch 5/5" in log

    status = status_of(run)
    assert (status["state"], status["attempts"]) == ("succeeded", 1)

    downloaded = tmp_path / "downloaded"
    fetched = runner("artifacts", run, "--download", str(downloaded))
    assert fetched.code == 0, fetched.output
    check_artifacts(downloaded / "outputs", ["keras", "h5", "savedmodel", "onnx"])


@pytest.mark.tensorflow
@pytest.mark.usefixtures("home", "tensorflow_base_image", "gpu_nodes", "real_store")
def test_the_regression_example_trains_on_a_real_control_plane_and_its_model_comes_back(
    runner: Runner, tmp_path: Path, real_kube: RealKube, *, example_wheelhouse: Path
) -> None:
    """The third example, so that all three run on the cluster (malaria with its input: test_inputs)."""
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_wheelhouse, jobs / "wheelhouse")
    on_a_gpu(jobs / "regression" / "job.yaml")

    result = runner("submit", "--backend", "kubernetes", str(jobs / "regression" / "job.yaml"), timeout=1500)
    assert result.code == 0, result.output[-4000:]
    run = submitted_run(result)
    table = real_kube.kubectl("get", "jobs")
    assert re.search(rf"^{run}\s+Complete\s+1/1", table.stdout, re.MULTILINE), table.stdout

    downloaded = tmp_path / "downloaded"
    fetched = runner("artifacts", run, "--download", str(downloaded))
    assert fetched.code == 0, fetched.output
    metrics = json.loads((downloaded / "outputs" / "metrics.json").read_text())
    assert {"mse", "mae", "mape"} <= set(metrics["test"])
    check_artifacts(downloaded / "outputs", ["keras", "h5", "savedmodel", "onnx"])


@pytest.mark.tensorflow
@pytest.mark.usefixtures("home", "tensorflow_base_image", "gpu_nodes")
def test_mnist_on_two_workers_trains_as_an_indexed_job_and_its_model_comes_back(
    runner: Runner,
    tmp_path: Path,
    real_kube: RealKube,
    real_store: str,
    *,
    s3: Any,
    example_wheelhouse: Path,
) -> None:
    """jobs/mnist-multiworker: two pods of an Indexed Job find each other through the run's headless
    Service, train one model under MultiWorkerMirroredStrategy, and its model predicts like mnist's."""
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "jobs", jobs, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(example_wheelhouse, jobs / "wheelhouse")
    manifest = jobs / "mnist-multiworker" / "job.yaml"
    on_a_gpu(manifest)

    result = runner("submit", "--backend", "kubernetes", str(manifest), timeout=1500)
    assert result.code == 0, result.output[-4000:]
    run = submitted_run(result)

    pods = real_kube.pods_of(run)
    indexes = sorted(
        pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for pod in pods
    )
    assert indexes == ["0", "1"]
    listed = real_kube.kubectl("get", "jobs", "-l", f"runner.dev/run={run}", "-o", "json")
    (job,) = json.loads(listed.stdout)["items"]
    assert job["spec"]["completionMode"] == "Indexed" and condition(job, "Complete")
    assert job["status"]["succeeded"] == 2

    downloaded = tmp_path / "downloaded"
    fetched = runner("artifacts", run, "--download", str(downloaded))
    assert fetched.code == 0, fetched.output
    metrics = json.loads((downloaded / "outputs" / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["test"]["accuracy"] > 0.8
    check_artifacts(downloaded / "outputs", ["keras", "h5", "savedmodel", "onnx"])
    worker = json.loads((downloaded / "workers" / "1" / "outputs" / "metrics.json").read_text())
    assert worker["test"]["accuracy"] == metrics["test"]["accuracy"]  # the same weights on both
    logs = runner("logs", run)
    assert "[worker 1] " in logs.output and "2 replicas train in sync" in logs.output
