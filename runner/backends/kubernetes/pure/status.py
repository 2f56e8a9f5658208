"""Kubernetes status for people: pure functions from API objects (plain dicts) to run states and reasons.

kube-scheduler explains an unschedulable pod in one line ("0/12 nodes are available: 12 Insufficient
nvidia.com/gpu. preemption: ..."); the runner says what that means for this job ("waiting: no node has 2 free
H100 GPUs"). Pod and Job conditions tell image pull errors, OOM kills, evictions and deadlines apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.records import RunState
from runner.spec.quantities import format_cpu, format_memory

_SCHEDULER_SUMMARY = re.compile(r"^\s*\d+/(?P<total>\d+) nodes are available:\s*(?P<reasons>.*)$")
_COUNTED_REASON = re.compile(r"^\s*(?P<count>\d+)\s+(?P<reason>.+?)\s*$")
# Where the preemption plugin's verdict starts: " preemption:" (up to 1.35) or ", preemption:" (1.36 on).
_PREEMPTION_NOTE = re.compile(r",?\s+preemption:")


@dataclass(frozen=True)
class Request:
    """What the job asks of a node, to phrase scheduling failures in its terms."""

    gpus: int = 0
    gpu_type: str | None = None
    cpu_millis: int | None = None
    memory_bytes: int | None = None


def _scheduler_reasons(message: str) -> tuple[int | None, list[tuple[int, str]]]:
    """Node count and the counted reasons of a FailedScheduling message (preemption and other uncounted
    notes dropped)."""
    first = _PREEMPTION_NOTE.split(message, maxsplit=1)[0].strip().rstrip(".")
    match = _SCHEDULER_SUMMARY.match(first)
    if match is None:
        return None, []
    reasons = []
    for part in match["reasons"].split(","):
        # A counted reason ends at its first full stop; what follows is a note of another plugin's
        # without a count (1.36's "no new claims to deallocate").
        counted = _COUNTED_REASON.match(part.split(". ", 1)[0])
        if counted:
            reasons.append((int(counted["count"]), counted["reason"].rstrip(".")))
    return int(match["total"]), reasons


def _explain(reason: str, request: Request) -> str:
    gpus = f"{request.gpus} free {request.gpu_type + ' ' if request.gpu_type else ''}GPU" + (
        "s" if request.gpus != 1 else ""
    )
    if reason == "Insufficient nvidia.com/gpu":
        return f"no node has {gpus}"
    if reason == "Insufficient cpu":
        plural = "s" if request.cpu_millis and request.cpu_millis > 1000 else ""
        cpu = (
            f"{format_cpu(request.cpu_millis)} free CPU{plural}"
            if request.cpu_millis
            else "the CPU asked for"
        )
        return f"no node has {cpu}"
    if reason == "Insufficient memory":
        memory = (
            f"{format_memory(request.memory_bytes)} free memory" if request.memory_bytes else "enough memory"
        )
        return f"no node has {memory}"
    if "didn't match Pod's node affinity/selector" in reason:
        # The runner's only node selection is the GPU type (runner.render.gpus), so say it that way.
        return (
            f"no node has {request.gpu_type} GPUs"
            if request.gpu_type
            else "no node matches the pod's node selector"
        )
    if "untolerated taint" in reason:
        return f"nodes have taints the job does not tolerate ({reason})"
    if "unschedulable" in reason:
        return "nodes are cordoned (unschedulable)"
    return reason


def pending_reason(message: str, request: Request) -> str:
    """kube-scheduler's FailedScheduling message, said in the job's terms."""
    total, reasons = _scheduler_reasons(message)
    if total is None:
        return f"waiting: {message.strip()}"
    if not reasons:
        return f"waiting: none of {total} nodes can run it"
    # the most common reason first, as the scheduler's own counts say what blocks the most nodes
    ranked = sorted(reasons, key=lambda item: -item[0])
    explained: list[str] = []
    for count, reason in ranked:
        text = _explain(reason, request)
        if count != total:
            text += f" ({count} of {total} nodes)"
        if text not in explained:
            explained.append(text)
    return "waiting: " + "; ".join(explained)


def container_problem(statuses: Sequence[Mapping[str, Any]], memory_bytes: int | None = None) -> str | None:
    """An image that cannot be pulled, or a container killed for memory, from pod container statuses."""
    for status in statuses:
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in (
            "ErrImagePull",
            "ImagePullBackOff",
            "InvalidImageName",
            "ErrImageNeverPull",
        ):
            detail = waiting.get("message") or waiting["reason"]
            return f"image {status.get('image', '?')} cannot be pulled: {detail}"
        for finished in (
            state.get("terminated") or {},
            (status.get("lastState") or {}).get("terminated") or {},
        ):
            if finished.get("reason") == "OOMKilled":
                limit = f" (limit {format_memory(memory_bytes)})" if memory_bytes else ""
                return f"killed: out of memory{limit}; raise spec.resources.memory"
    return None


def pod_disruption(pod_status: Mapping[str, Any]) -> str | None:
    """Why a pod was disrupted (evicted, its node lost, preempted), or None."""
    if pod_status.get("reason") == "Evicted":
        return f"evicted: {pod_status.get('message', 'the node ran short of resources')}"
    for condition in pod_status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            reason = condition.get("reason", "Disrupted")
            return f"disrupted ({reason}): {condition.get('message', '')}".rstrip(": ")
    return None


def job_outcome(job_status: Mapping[str, Any]) -> tuple[RunState, str] | None:
    """The final state of a batch/v1 Job from its conditions, or None while it is not finished."""
    for condition in job_status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        kind, reason = condition.get("type"), condition.get("reason", "")
        if kind == "Complete":
            return RunState.SUCCEEDED, "succeeded"
        if kind == "Failed":
            if reason == "DeadlineExceeded":
                return RunState.TIMED_OUT, "stopped at its activeDeadlineSeconds (spec.timeout)"
            if reason == "BackoffLimitExceeded":
                return RunState.FAILED, "failed after its retries (backoffLimit reached)"
            if reason == "PodFailurePolicy":
                return (
                    RunState.FAILED,
                    f"failed by its pod failure policy: {condition.get('message', '')}".rstrip(": "),
                )
            return RunState.FAILED, f"failed: {reason or condition.get('message', '')}"
    return None
