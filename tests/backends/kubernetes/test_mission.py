"""The mission end to end, on the simulated GPU cluster.

`runner submit jobs/mnist/job.yaml --backend kubernetes`: the image is built on the TensorFlow stand-in and
pushed to the local registry, the Job is scheduled onto a simulated GPU node, its pod runs as a real
container that trains, the log streams to the terminal, and the model, metrics and log land in the s3://
store (moto's server); kubectl shows the run, and `runner artifacts --download` brings back a model that
loads and predicts. Then two things that go wrong on real clusters, on the simulator's fake clock: a job
larger than any node waits with the reason shown and can be cancelled, and a node lost mid-run costs the
run an attempt but not one of its retries.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, runner_command, status_of, submitted_run, wait_for
from tests.jobs.formats import check_artifacts
from tests.support.apiserver.fixtures import Kube
from tests.support.sim.api import is_true
from tests.support.sim.clock import RealClock
from tests.support.sim.cluster import Simulator, simulated
from tests.support.sim.docker_runtime import DockerRuntime
from tests.support.sim.fixtures import Cluster

Runner = Callable[..., Result]


@pytest.fixture
def containers_cluster(kube: Kube, docker_client: Any) -> Iterator[Simulator]:
    """Two 8-GPU H100 nodes whose kubelets run pods as real containers, in real time."""
    runtime = DockerRuntime(kube.server.store, docker_client)
    with simulated(kube.server, runtime, RealClock()) as sim:
        sim.add_nodes(2, gpus=8)
        yield sim


def on_a_gpu(manifest: Path) -> None:
    """The example runs on CPU by default; its comment says to ask for a GPU on a GPU node: do that."""
    text = manifest.read_text()
    assert "resources: {gpu: 0," in text
    manifest.write_text(text.replace("resources: {gpu: 0,", "resources: {gpu: 1, gpuType: H100,"))


@pytest.mark.tensorflow
@pytest.mark.usefixtures("home", "tensorflow_base_image")
def test_mnist_trains_on_the_simulated_cluster_and_its_model_comes_back(
    runner: Runner,
    tmp_path: Path,
    kube: Kube,
    containers_cluster: Simulator,
    store_secret: str,
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

    # The training log streamed to the terminal, prefixed with the run id, while the pod ran.
    assert re.search(rf"^\[{run}\] .*[Ee]poch 5/5", result.stdout, re.MULTILINE), result.stdout[-3000:]
    assert re.search(rf"^\[{run}\] ==> test: +accuracy=0\.\d+", result.stdout, re.MULTILINE), result.stdout[
        -3000:
    ]

    # Scheduled onto a GPU node: the toleration and the product selector did their work.
    (pod,) = containers_cluster.pods_of(run)
    assert pod["spec"]["nodeName"].startswith("gpu-node-")
    node = kube.server.get("nodes", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert "affinity" in pod["spec"]  # gpuType H100: a required affinity on the H100 products
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    # kubectl shows the run as a complete Job.
    listed = kube.kubectl("get", "jobs", "-l", f"runner.dev/run={run}", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (job,) = json.loads(listed.stdout)["items"]
    assert is_true(job, "Complete") and job["status"]["succeeded"] == 1
    table = kube.kubectl("get", "jobs")
    assert re.search(rf"^{run}\s+Complete\s+1/1", table.stdout, re.MULTILINE), table.stdout

    # The store holds the complete run: the full log, the metrics, every model format.
    keys = {
        item["Key"]
        for item in s3.list_objects_v2(Bucket=store_secret, Prefix=f"runs/mnist/{run}/")["Contents"]
    }
    prefix = f"runs/mnist/{run}/"
    assert {f"{prefix}MANIFEST.json", f"{prefix}logs/attempt-1.log", f"{prefix}outputs/metrics.json"} <= keys
    log = s3.get_object(Bucket=store_secret, Key=f"{prefix}logs/attempt-1.log")["Body"].read().decode()
    assert "Epoch 5/5" in log

    status = status_of(run)
    assert (status["state"], status["attempts"]) == ("succeeded", 1)

    downloaded = tmp_path / "downloaded"
    fetched = runner("artifacts", run, "--download", str(downloaded))
    assert fetched.code == 0, fetched.output
    check_artifacts(downloaded / "outputs", ["keras", "h5", "savedmodel", "onnx"])


@pytest.fixture
def h100_job(job: Callable[..., Path], python_base_image: str, store_secret: str) -> Callable[..., Path]:
    """A small job on the python stand-in asking for H100 GPUs, with the cluster's store settings."""

    def make(name: str, gpus: int = 1, **spec: Any) -> Path:
        resources = {"gpu": gpus, "gpuType": "H100"}
        return job(
            name,
            image={"base": python_base_image},
            command=["sh", "-c", "train"],
            resources=resources,
            **spec,
        )

    return make


def submit_detached(runner: Runner, path: Path) -> str:
    result = runner("submit", "--backend", "kubernetes", "--detach", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    return result.stdout.strip()


def test_a_job_larger_than_any_node_waits_with_the_reason_and_can_be_cancelled(
    runner: Runner, h100_job: Callable[..., Path], cluster: Cluster
) -> None:
    cluster.sim.add_nodes(3, gpus=8)
    path = h100_job("too-big", gpus=16)
    run = submit_detached(runner, path)
    cluster.sim.settle()

    status = status_of(run)
    assert status["state"] == "pending"
    assert status["message"] == "waiting: no node has 16 free H100 GPUs"
    (pod,) = cluster.sim.pods_of(run)
    described = cluster.kube.kubectl("describe", "pod", pod["metadata"]["name"])
    assert "FailedScheduling" in described.stdout
    assert "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." in described.stdout

    cancelled = runner("cancel", run)
    assert cancelled.code == 0, cancelled.output
    cluster.sim.settle()
    assert status_of(run)["state"] == "cancelled"
    assert cluster.server.find("jobs", run) is None
    leftover = [
        pod
        for pod in cluster.server.list_objects("pods", cluster.namespace)
        if (pod["metadata"].get("labels") or {}).get("runner.dev/run") == run
    ]
    assert leftover == []


def test_a_node_lost_mid_run_retries_without_spending_a_retry(
    runner: Runner, h100_job: Callable[..., Path], cluster: Cluster
) -> None:
    cluster.sim.add_nodes(2, gpus=8)
    path = h100_job("survivor", retries=0)
    cluster.runtime.duration = lambda pod: 3600.0  # an hour of training, in fake time
    run = submit_detached(runner, path)
    cluster.sim.advance(5)
    (first,) = cluster.sim.pods_of(run)
    lost = first["spec"]["nodeName"]
    assert status_of(run)["state"] == "running"

    cluster.sim.advance(600)
    cluster.sim.lose_node(lost)
    cluster.sim.advance(301)  # the default 300s toleration of an unreachable node runs out
    evictions = [
        event
        for event in cluster.server.list_objects("events", cluster.namespace)
        if event["reason"] == "TaintManagerEviction"
    ]
    assert [event["involvedObject"]["name"] for event in evictions] == [first["metadata"]["name"]]
    (replacement,) = cluster.sim.pods_of(run)
    assert replacement["metadata"]["uid"] != first["metadata"]["uid"]
    assert replacement["spec"]["nodeName"] != lost
    job_status = cluster.server.get("jobs", run)["status"]
    assert job_status.get("failed", 0) == 0  # the disruption is not a failure of the job
    assert status_of(run)["state"] == "running"

    cluster.sim.advance(3600)
    status = status_of(run)
    assert status["state"] == "succeeded", status
    job_object = cluster.server.get("jobs", run)
    assert job_object["spec"]["backoffLimit"] == 0  # retries: 0, yet the run survived the lost node


def test_submit_follows_its_run_through_a_slow_api_and_dropped_watches(
    h100_job: Callable[..., Path], cluster: Cluster
) -> None:
    """Chaos on the cluster while `runner submit` follows a run: every request answered 200 ms late,
    then every watch cut while the pod runs. The log still arrives whole and the exit code is the job's."""
    cluster.sim.add_nodes(1, gpus=8)
    path = h100_job("steady")
    cluster.runtime.duration = lambda pod: 600.0
    follower = subprocess.Popen(
        runner_command("submit", "--backend", "kubernetes", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = wait_for(lambda: _job_named(cluster, "steady"), 300, "the Job")
        cluster.sim.slow_api(0.2)
        cluster.sim.advance(5)
        wait_for(lambda: cluster.server.open_streams > 0, 60, "the log follower's stream")
        cluster.sim.drop_watches(abrupt=True)
        cluster.sim.advance(600)
        out, err = follower.communicate(timeout=300)
    finally:
        if follower.poll() is None:
            follower.kill()
        cluster.sim.slow_api(0)
    assert follower.returncode == 0, err[-3000:]
    run_id = run["metadata"]["name"]
    assert out.count("running on gpu-node-1 for 600s") == 1  # resumed follows skip what was shown
    assert "exiting with code 0" in out, out[-2000:]
    assert f"run {run_id} succeeded" in out + err


def _job_named(cluster: Cluster, job: str) -> dict[str, Any] | None:
    """The Job of the only run of job (its name is the run id, unknown until it exists)."""
    found = [
        item
        for item in cluster.server.list_objects("jobs", cluster.namespace)
        if (item["metadata"].get("labels") or {}).get("runner.dev/job") == job
    ]
    return found[0] if found else None
