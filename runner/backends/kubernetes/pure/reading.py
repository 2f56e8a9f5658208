"""What a run's record becomes from its Job and pods, read as the API's own JSON (plain camelCase dicts).

Pure: the kubernetes backend fetches, this decides. One run's refresh (a GET of its Job, a LIST of its
pods) and the bulk refresh of `runner list` (paginated LISTs of the namespace's runner Jobs and pods) go
through the same functions, so a run reads the same whichever way it was fetched. Reading raw JSON
rather than the client's models matters at scale: deserializing 10,000 Jobs into models costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from runner.backends.kubernetes.pure.status import (
    Request,
    container_problem,
    job_outcome,
    pending_reason,
    pod_disruption,
)
from runner.records import RunRecord, RunState
from runner.render.kubernetes.conventions import COMPLETION_INDEX, JOB_NAME_LABEL
from runner.spec.labels import SCHEDULE_LABEL
from runner.timestamps import seconds

Obj = Mapping[str, Any]


def parse_time(text: str | None) -> float | None:
    """An API timestamp (RFC 3339, `2025-06-02T00:00:00Z`) as epoch seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def finished_time(status: Obj) -> float | None:
    """When a finished Job ended: completionTime, which Kubernetes sets only on success, else the
    lastTransitionTime of its Failed condition."""
    if status.get("completionTime"):
        return parse_time(status["completionTime"])
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime"))
    return None


UNRETRYABLE = (126, 127)  # the pod failure policy fails the Job at once on these (render.kubernetes)


def missing_job(
    record: RunRecord, now: float, stored: Obj | None = None, *, submitting: bool = False
) -> dict[str, Any]:
    """The record's changes when its Job is not on the cluster (any more). A run whose submission is
    still creating its objects (submitting: the process doing it is alive) has none yet. stored is the
    run.json the agent wrote into the store (None when there is none): a finished Job that its TTL
    controller removed before the runner looked is read from it, where its last attempt's end was the
    run's end (it succeeded, or failed with no retry left or a code the pod failure policy fails at
    once). Anything else is a Job deleted outside the runner, whose pod the agent collected as cancelled
    if it ran."""
    if not record.launch.get("created"):
        if submitting:
            return {}
        return {"state": RunState.LOST, "message": "lost: the submission stopped before its Job was created"}
    ended = stored_end(record, stored or {}, now)
    if ended is not None:
        return ended
    message = "cancelled: its Job was deleted outside the runner (kubectl delete?)"
    if record.labels.get(SCHEDULE_LABEL):
        message = (
            "cancelled: its Job is gone (its schedule was deleted, or kubectl delete); the store "
            "has what the run collected"
        )
    return {"state": RunState.CANCELLED, "finished": now, "message": message}


def stored_end(record: RunRecord, stored: Obj, now: float) -> dict[str, Any] | None:
    """The record's end as run.json tells it, when it tells the run's end; else None."""
    state, attempt, code = stored.get("state"), stored.get("attempt"), stored.get("exitCode")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        return None
    if state == RunState.SUCCEEDED:
        message = "succeeded"
    elif state == RunState.FAILED and (attempt >= record.max_attempts or code in UNRETRYABLE):
        message = f"failed: {stored.get('message') or f'exit code {code}'}"
    else:
        return None
    finished = seconds(stored.get("finished"))
    changes: dict[str, Any] = {
        "state": RunState(state),
        "message": f"{message} (its finished Job was removed by its TTL; read from the store)",
        "attempts": max(record.attempts, attempt),
        "finished": now if finished is None else finished,
    }
    if isinstance(code, int) and not isinstance(code, bool):
        changes["exit_code"] = code
    started = seconds(stored.get("started"))
    if record.started is None and started is not None:
        changes["started"] = started
    return changes


def job_changes(record: RunRecord, job: Obj) -> tuple[dict[str, Any], bool]:
    """The record's changes that the Job alone tells, and whether its pods must be read for the rest
    (a Job that is neither finished nor suspended: they say running, or why it waits). A suspended Job
    is pending, whatever it was before. A run already known running whose Job still counts every
    worker's pod ready, in the same attempt, has nothing new in its pods: they are not read (at
    thousands of running runs, the pods' list is most of what `runner list` would fetch). The changes
    include what was seen (seen_of): the Job's resourceVersion, and whether its pods were needed."""
    changes, needs_pods = _job_changes(record, job)
    return {**changes, "seen": seen_of(job, needs_pods)}, needs_pods


def _job_changes(record: RunRecord, job: Obj) -> tuple[dict[str, Any], bool]:
    status = job.get("status") or {}
    pods = sum(int(status.get(key) or 0) for key in ("failed", "succeeded", "active"))
    # Each worker's pod is one attempt of that worker (a multi-worker run is never retried: check_workers).
    workers = max(int(record.launch.get("workers") or 1), 1)
    attempts = -(-pods // workers)
    changes: dict[str, Any] = {"attempts": max(attempts, record.attempts)}
    if status.get("startTime") and record.started is None:
        changes["started"] = parse_time(status["startTime"])
    outcome = job_outcome(status)
    if outcome is not None:
        state, message = outcome
        changes.update(state=state, message=message, finished=finished_time(status))
        return changes, False
    if (job.get("spec") or {}).get("suspend"):
        # The Job controller stops a suspended Job's pods: a run suspended mid-run (kubectl patch) waits
        # to be resumed, as a queued one does, so it is pending again, not running.
        return {
            **changes,
            "state": RunState.PENDING,
            "message": "suspended (kubectl patch or a queue holds it)",
        }, False
    return changes, not still_running(record, status, workers, changes["attempts"])


def seen_of(job: Obj, needs_pods: bool) -> dict[str, Any]:
    """What a record keeps of the Job it was read from (RunRecord.seen): its resourceVersion, and
    whether the run's state needed its pods as well."""
    return {"version": (job.get("metadata") or {}).get("resourceVersion"), "pods": needs_pods}


def unchanged_since_seen(seen: Obj | None, metadata: Obj) -> bool:
    """Whether a run's record, which last read its Job as seen (RunRecord.seen), already says all that
    its Job, listed now with this metadata, tells: the Job is at the resourceVersion last read, and that
    reading did not need the pods (which change without their Job changing). A record never read from
    its Job (seen None, or no version) is not."""
    last = seen or {}
    version = metadata.get("resourceVersion")
    return bool(version) and last.get("version") == version and last.get("pods") is False


def stale_since_seen(seen: Mapping[str, Obj | None], listed: Mapping[str, Obj]) -> list[str]:
    """The runs, of these that last read their Jobs as seen (by run id), whose records a listing of the
    namespace's runner Jobs (metadata by name) leaves behind: their Job changed or is gone, or their
    state needs their pods. Only these need reading, whole record and Job; in seen's order."""
    return [
        run_id
        for run_id, last in seen.items()
        if run_id not in listed or not unchanged_since_seen(last, listed[run_id])
    ]


def still_running(record: RunRecord, status: Obj, workers: int, attempts: int) -> bool:
    """The run was running, and its Job (not finished) says every worker's pod is ready, none is
    terminating, and the attempt is the one recorded (a retry's pod may be on another node)."""
    return (
        record.state is RunState.RUNNING
        and attempts == record.attempts
        and int(status.get("ready") or 0) >= workers
        and int(status.get("active") or 0) == workers
        and not int(status.get("terminating") or 0)
    )


def pod_changes(record: RunRecord, pods: Iterable[Obj], changes: dict[str, Any]) -> dict[str, Any]:
    """changes completed from the run's pods, in the API's listing order: the first that tells something.
    A multi-worker run that is not wholly running says which workers wait, and why (waiting_workers)."""
    launch = record.launch
    pods = list(pods)
    workers = int(launch.get("workers") or 1)
    if workers > 1:
        waiting = waiting_workers(pods, workers, _request(launch))
        if waiting is not None:
            return {**changes, "state": RunState.PENDING, "message": waiting}
    for pod in pods:
        pod_status = pod.get("status") or {}
        problem = container_problem(pod_status.get("containerStatuses") or [], launch.get("memory"))
        disrupted = pod_disruption(pod_status)
        if problem or disrupted:
            return {**changes, "message": problem or disrupted}
        if pod_status.get("phase") == "Running":
            node = (pod.get("spec") or {}).get("nodeName")
            return {**changes, "state": RunState.RUNNING, "message": f"running on {node}"}
        if pod_status.get("phase") == "Pending":
            for condition in pod_status.get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                    return {
                        **changes,
                        "message": pending_reason(condition.get("message", ""), _request(launch)),
                    }
            return {**changes, "message": "pending: scheduled, starting"}
    return changes


def _request(launch: Mapping[str, Any]) -> Request:
    return Request(gpus=int(launch.get("gpus") or 0), gpu_type=launch.get("gpuType"))


def waiting_workers(pods: Iterable[Obj], workers: int, request: Request) -> str | None:
    """Which workers of a multi-worker run are pending and why ("worker 1 of 2 pending: no node has 1
    free GPU"), or None when none is: each pending pod by its completion index, said as one line. The
    workers that run wait on those (they train together), so the run as a whole is pending."""
    said: list[str] = []
    for pod in sorted(pods, key=worker_index):
        pod_status = pod.get("status") or {}
        if pod_status.get("phase") != "Pending":
            continue
        why = container_problem(pod_status.get("containerStatuses") or []) or "scheduled, starting"
        for condition in pod_status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                why = pending_reason(condition.get("message", ""), request).removeprefix("waiting: ")
        said.append(f"worker {worker_index(pod)} of {workers} pending: {why}")
    return "; ".join(said) if said else None


def worker_index(pod: Obj) -> int:
    """A pod's worker index: the completion index the job controller annotates an Indexed Job's pods
    with (0 for every other pod)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    index = str(annotations.get(COMPLETION_INDEX, "0"))
    return int(index) if index.isdigit() else 0


def unchanged(record: RunRecord, changes: Mapping[str, Any]) -> bool:
    """Whether writing changes would leave the record as it is (then the bulk refresh writes nothing)."""
    return all(getattr(record, name) == value for name, value in changes.items())


def pod_selector(run_id: str) -> str:
    """The label selector of a run's pods: the job controller labels each with its Job's name, which is
    the run id of every run (submitted, or started by a schedule, which puts no runner.dev/run on them)."""
    return f"{JOB_NAME_LABEL}={run_id}"
