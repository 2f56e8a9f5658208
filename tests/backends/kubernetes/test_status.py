"""Kubernetes status in the job's terms: scheduler messages, pull errors, OOM kills, evictions, outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from runner.backends.kubernetes.pure.status import (
    Request,
    container_problem,
    job_outcome,
    pending_reason,
    pod_disruption,
)
from runner.records import RunState

H100_X2 = Request(gpus=2, gpu_type="H100", cpu_millis=4000, memory_bytes=16 * 2**30)


@pytest.mark.parametrize(
    ("message", "request_", "expected"),
    [
        (
            "0/12 nodes are available: 12 Insufficient nvidia.com/gpu. preemption: 0/12 nodes are available: "
            "12 No preemption victims found for incoming pod.",
            H100_X2,
            "waiting: no node has 2 free H100 GPUs",
        ),
        (
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
            Request(gpus=1),
            "waiting: no node has 1 free GPU",
        ),
        (  # kube-scheduler 1.36's own words, seen on the real control plane (tests/realcluster)
            "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. no new claims to deallocate, "
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
            Request(gpus=16, gpu_type="H100"),
            "waiting: no node has 16 free H100 GPUs",
        ),
        (
            "0/5 nodes are available: 2 Insufficient cpu, 3 Insufficient nvidia.com/gpu. "
            "preemption: not eligible",
            H100_X2,
            "waiting: no node has 2 free H100 GPUs (3 of 5 nodes); no node has 4 free CPUs (2 of 5 nodes)",
        ),
        (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            H100_X2,
            "waiting: no node has H100 GPUs",
        ),
        (
            "0/4 nodes are available: 4 Insufficient memory.",
            H100_X2,
            "waiting: no node has 16Gi free memory",
        ),
        (
            "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: infra}.",
            Request(),
            "waiting: nodes have taints the job does not tolerate "
            "(node(s) had untolerated taint {dedicated: infra})",
        ),
        (
            "pod has unbound immediate PersistentVolumeClaims",
            Request(),
            "waiting: pod has unbound immediate PersistentVolumeClaims",
        ),
    ],
)
def test_pending_reasons(message: str, request_: Request, expected: str) -> None:
    assert pending_reason(message, request_) == expected


def test_image_pull_errors_and_oom_kills() -> None:
    pulling: list[dict[str, Any]] = [
        {
            "image": "registry.local/runner/mnist:abc",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
        }
    ]
    assert (
        container_problem(pulling)
        == "image registry.local/runner/mnist:abc cannot be pulled: Back-off pulling image"
    )
    oom: list[dict[str, Any]] = [
        {"image": "x", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    ]
    assert (
        container_problem(oom, 4 * 2**30) == "killed: out of memory (limit 4Gi); raise spec.resources.memory"
    )
    assert container_problem([{"image": "x", "state": {"running": {}}}]) is None


def test_disruptions() -> None:
    evicted = {"reason": "Evicted", "message": "The node was low on resource: memory."}
    assert pod_disruption(evicted) == "evicted: The node was low on resource: memory."
    lost = {
        "conditions": [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "node gone",
            }
        ]
    }
    assert pod_disruption(lost) == "disrupted (DeletionByTaintManager): node gone"
    assert pod_disruption({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}) is None


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([{"type": "Complete", "status": "True"}], RunState.SUCCEEDED),
        ([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}], RunState.TIMED_OUT),
        ([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], RunState.FAILED),
        ([{"type": "Failed", "status": "False"}], None),
        ([], None),
    ],
)
def test_job_outcomes(conditions: list[dict[str, str]], expected: RunState | None) -> None:
    outcome = job_outcome({"conditions": conditions})
    assert (outcome[0] if outcome else None) is expected
