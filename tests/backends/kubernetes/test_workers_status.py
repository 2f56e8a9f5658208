"""A multi-worker run's status from its Indexed Job's pods: which workers wait and why, one attempt per
worker's pod, each pod's worker from its completion index."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runner.backends.kubernetes.pure.reading import job_changes, pod_changes, waiting_workers, worker_index
from runner.backends.kubernetes.pure.status import Request
from runner.records import RunRecord, RunState

UNSCHEDULABLE = (
    "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node "
    "affinity/selector. preemption: 0/3 nodes are available: 3 No preemption victims found."
)


def record(workers: int = 2) -> RunRecord:
    return RunRecord(
        id="train-abc123",
        job="train",
        backend="kubernetes",
        state=RunState.PENDING,
        created=0.0,
        workdir="",
        store_url="s3://bucket/runs",
        manifest="",
        launch={"namespace": "ml", "created": True, "gpus": 1, "gpuType": "H100", "workers": workers},
    )


def pod(index: int | None, phase: str, message: str | None = None) -> dict[str, Any]:
    conditions = []
    if message is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        )
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": str(index)}
    return {
        "metadata": {"name": f"train-abc123-{index}-x", "annotations": annotations},
        "spec": {"nodeName": "h100-a" if phase == "Running" else None},
        "status": {"phase": phase, "conditions": conditions},
    }


def test_a_partly_scheduled_run_says_which_worker_waits_and_why() -> None:
    pods = [pod(1, "Pending", UNSCHEDULABLE), pod(0, "Running")]
    changes = pod_changes(record(), pods, {})
    assert changes["state"] == RunState.PENDING
    assert changes["message"] == (
        "worker 1 of 2 pending: no node has H100 GPUs (2 of 3 nodes); "
        "no node has 1 free H100 GPU (1 of 3 nodes)"
    )


def test_every_waiting_worker_is_named_in_index_order() -> None:
    pods = [pod(2, "Pending", UNSCHEDULABLE), pod(0, "Running"), pod(1, "Pending")]
    said = waiting_workers(pods, 3, Request(gpus=1))
    assert said is not None
    assert said.startswith("worker 1 of 3 pending: scheduled, starting; worker 2 of 3 pending: no node")


def test_a_wholly_running_run_is_running() -> None:
    changes = pod_changes(record(), [pod(0, "Running"), pod(1, "Running")], {})
    assert changes["state"] == RunState.RUNNING


def test_one_pod_per_worker_is_one_attempt() -> None:
    job = {"spec": {}, "status": {"active": 2, "startTime": "2026-01-01T00:00:00Z"}}
    changes, needs_pods = job_changes(record(), job)
    assert changes["attempts"] == 1 and needs_pods
    single = job_changes(record(workers=1), {"spec": {}, "status": {"failed": 1, "active": 1}})[0]
    assert single["attempts"] == 2


def test_a_run_known_running_whose_job_counts_every_pod_ready_reads_no_pods() -> None:
    running = replace(record(), state=RunState.RUNNING, attempts=1, message="running on gpu-node-3")
    steady = {"spec": {}, "status": {"active": 2, "ready": 2}}
    changes, needs_pods = job_changes(running, steady)
    assert not needs_pods and "state" not in changes and "message" not in changes, "nothing new"

    assert job_changes(running, {"spec": {}, "status": {"active": 2, "ready": 1}})[1], "a worker not ready"
    assert job_changes(record(), steady)[1], "it was pending: which node it runs on is in its pods"
    retried = {"spec": {}, "status": {"active": 2, "ready": 2, "failed": 2}}
    assert job_changes(running, retried)[1], "a new attempt: its pods may be on other nodes"
    leaving = {"spec": {}, "status": {"active": 2, "ready": 2, "terminating": 1}}
    assert job_changes(running, leaving)[1], "a pod terminating: disrupted, perhaps"


def test_the_worker_is_the_completion_index_else_zero() -> None:
    assert worker_index(pod(3, "Running")) == 3
    assert worker_index(pod(None, "Running")) == 0
