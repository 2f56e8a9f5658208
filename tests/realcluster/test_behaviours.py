"""What the simulator's tests claimed, against the real kube-scheduler, Job controller, garbage collector
and node-lifecycle controller: a job no node can hold waits with kube-scheduler's own words and runner's
reading of them; cancel (foreground deletion) leaves no pod; the pod failure policy fails a job at once on
exit codes 126 and 127; activeDeadlineSeconds stops a run; a queue label creates a suspended Job; a node
lost mid-run is a disruption that costs no retry."""

from __future__ import annotations

import time

import pytest

from tests.conftest import status_of
from tests.realcluster.helpers import (
    ON_GPU_NODES,
    Job,
    Runner,
    condition,
    job_finished,
    small_job,
    submit_detached,
    wait_for_run,
)
from tests.support.nodeagent import NodeAgent, NodeSpec
from tests.support.realcluster import H100, RealKube, wait_until

pytestmark = ON_GPU_NODES


def scheduler_message(kube: RealKube, pod: str) -> str:
    events = [
        event
        for event in kube.events(**{"involvedObject.name": pod})
        if event["reason"] == "FailedScheduling"
    ]
    return str(events[-1]["message"]) if events else ""


def test_a_job_larger_than_any_node_waits_with_the_schedulers_reason_and_cancel_leaves_no_pod(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = small_job(
        job, python_base_image, "too-big", "echo never", resources={"gpu": 16, "gpuType": "H100"}
    )
    run = submit_detached(path)

    (pod,) = wait_until(lambda: real_kube.pods_of(run), 60, "the Job's pod")
    name = pod["metadata"]["name"]
    message = wait_until(lambda: scheduler_message(real_kube, name), 60, "kube-scheduler's FailedScheduling")
    # kube-scheduler's own words, preemption included
    assert message.startswith("0/2 nodes are available: 2 Insufficient nvidia.com/gpu."), message
    assert "preemption:" in message
    described = real_kube.kubectl("describe", "pod", name)
    assert "FailedScheduling" in described.stdout and "Insufficient nvidia.com/gpu" in described.stdout
    status = wait_until(
        lambda: doc if (doc := status_of(run))["message"].startswith("waiting:") else None,
        60,
        "the waiting reason",
    )
    assert status["state"] == "pending"

    cancelled = runner("cancel", run, timeout=300)
    assert cancelled.code == 0, cancelled.output
    assert status_of(run)["state"] == "cancelled"
    assert real_kube.job(run) is None
    assert real_kube.pods_of(run) == []


def test_runner_says_why_a_job_larger_than_any_node_waits(
    job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = small_job(
        job, python_base_image, "too-big", "echo never", resources={"gpu": 16, "gpuType": "H100"}
    )
    run = submit_detached(path)
    status = wait_until(
        lambda: doc if (doc := status_of(run))["message"].startswith("waiting:") else None,
        60,
        "the waiting reason",
    )
    assert status["state"] == "pending"
    assert status["message"] == "waiting: no node has 16 free H100 GPUs"


def test_cancel_of_a_running_job_stops_its_container_and_leaves_no_pod(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube, gpu_nodes: NodeAgent
) -> None:
    path = small_job(job, python_base_image, "long", "echo started; sleep 600")
    run = submit_detached(path)
    wait_for_run(run, "running")
    wait_until(lambda: "started" in runner("logs", run).stdout, 60, "the job's first line")
    (pod,) = real_kube.pods_of(run)
    assert pod["metadata"]["uid"] in gpu_nodes.runtime.holding()  # type: ignore[attr-defined]

    started = time.monotonic()
    cancelled = runner("cancel", run, timeout=300)
    assert cancelled.code == 0, cancelled.output
    assert time.monotonic() - started < 60  # SIGTERM ended it: not the grace period's SIGKILL
    assert status_of(run)["state"] == "cancelled"
    assert real_kube.job(run) is None
    assert real_kube.pods_of(run) == []
    wait_until(lambda: not gpu_nodes.runtime.holding(), 30, "the container to be removed")  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", [126, 127])
def test_an_unretryable_exit_code_fails_the_job_at_once_despite_retries(
    job: Job, python_base_image: str, real_kube: RealKube, code: int
) -> None:
    path = small_job(job, python_base_image, f"broken-{code}", f"exit {code}", retries=3)
    run = submit_detached(path)
    finished = job_finished(real_kube, run)
    failed = condition(finished, "Failed")
    assert failed is not None and failed["reason"] == "PodFailurePolicy", finished["status"]
    assert finished["spec"]["backoffLimit"] == 3
    assert finished["status"].get("failed") == 1  # one attempt, no retry
    assert len(real_kube.pods_of(run)) == 1
    status = wait_for_run(run, "failed")
    assert status["message"].startswith("failed by its pod failure policy:"), status
    assert str(code) in status["message"]


def test_active_deadline_stops_the_run(job: Job, python_base_image: str, real_kube: RealKube) -> None:
    path = small_job(job, python_base_image, "slow", "echo working; sleep 600", timeout="5s")
    run = submit_detached(path)
    finished = job_finished(real_kube, run, timeout=90)
    assert finished["spec"]["activeDeadlineSeconds"] == 5
    failed = condition(finished, "Failed")
    assert failed is not None and failed["reason"] == "DeadlineExceeded", finished["status"]
    status = wait_for_run(run, "timed-out")
    assert status["message"] == "stopped at its activeDeadlineSeconds (spec.timeout)"
    wait_until(
        lambda: (
            not real_kube.pods_of(run)
            or all(pod["status"].get("phase") in ("Succeeded", "Failed") for pod in real_kube.pods_of(run))
        ),
        60,
        "the pod to be stopped",
    )


def test_a_queue_label_creates_a_suspended_job_that_starts_when_admitted(
    job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = small_job(job, python_base_image, "queued", "echo admitted", kubernetes={"queue": "team-a"})
    run = submit_detached(path)
    created = real_kube.job(run)
    assert created is not None
    assert created["spec"]["suspend"] is True
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    suspended = wait_until(
        lambda: condition(real_kube.job(run) or {}, "Suspended"), 30, "the Suspended condition"
    )
    assert suspended["reason"] == "JobSuspended"
    assert real_kube.pods_of(run) == []
    status = status_of(run)
    assert status["message"] == "suspended (kubectl patch or a queue holds it)", status

    # admission, as Kueue does it: unsuspend; the Job controller then starts its pod
    real_kube.batch.patch_namespaced_job(run, real_kube.namespace, {"spec": {"suspend": False}})
    finished = job_finished(real_kube, run)
    assert condition(finished, "Complete"), finished["status"]
    assert wait_for_run(run, "succeeded")["state"] == "succeeded"


def test_a_node_lost_mid_run_is_a_disruption_that_costs_no_retry(
    job: Job, python_base_image: str, real_kube: RealKube, gpu_nodes: NodeAgent
) -> None:
    """The node goes silent mid-run; the node-lifecycle controller sees it (NotReady, unreachable taint);
    its machine is then removed, as a cloud provider removes a dead VM, and the pod garbage collector
    fails the orphaned pod with a DisruptionTarget condition, which the pod failure policy ignores: the
    Job starts a replacement on another node although retries is 0."""
    path = small_job(job, python_base_image, "survivor", "echo attempt on $(hostname); sleep 8", retries=0)
    run = submit_detached(path)
    (first,) = wait_until(
        lambda: [pod for pod in real_kube.pods_of(run) if pod["status"].get("phase") == "Running"],
        60,
        "a running pod",
    )
    lost = first["spec"]["nodeName"]
    try:
        gpu_nodes.lose(lost)

        def unreachable() -> bool:
            node = real_kube.get(real_kube.core.read_node, lost) or {}
            taints = (node.get("spec") or {}).get("taints") or []
            return any(taint["key"] == "node.kubernetes.io/unreachable" for taint in taints)

        wait_until(unreachable, 120, f"the node-lifecycle controller to mark {lost} unreachable", pause=1)
        gpu_nodes.remove_node(lost)
        finished = job_finished(real_kube, run, timeout=180)
        assert condition(finished, "Complete"), finished["status"]
        assert finished["spec"]["backoffLimit"] == 0
        assert finished["status"].get("failed", 0) == 0  # the disruption is not a failure of the job
        (replacement,) = real_kube.pods_of(run)
        assert replacement["metadata"]["uid"] != first["metadata"]["uid"]
        assert replacement["spec"]["nodeName"] != lost
        assert wait_for_run(run, "succeeded")["state"] == "succeeded"
    finally:
        if lost not in gpu_nodes.specs:
            gpu_nodes.add_node(NodeSpec(lost, gpus=8, product=H100))
