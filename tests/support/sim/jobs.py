"""The Job controller (batch/v1, NonIndexed), as Kubernetes 1.31 runs it.

Pods are created from the template (`<job>-<random>`, the template's labels, which the API server filled
with batch.kubernetes.io/job-name and controller-uid and their legacy twins; a controller ownerReference)
and carry the batch.kubernetes.io/job-tracking finalizer: a finished pod is counted into status.succeeded
or status.failed exactly once, then released. Failed pods go through spec.podFailurePolicy (Ignore: not
counted; FailJob: the Job fails at once) and count towards backoffLimit; the next pod waits 10s, 20s, ...
(at most six minutes) on the simulator clock. activeDeadlineSeconds kills the active pods and fails the
Job with DeadlineExceeded; suspend deletes active pods (condition Suspended; those pods are not counted
as failures) and resume restarts the deadline clock. The interim conditions come first, as in 1.31:
SuccessCriteriaMet before Complete, FailureTarget before Failed, the final one once no pod is still
terminating.
ttlSecondsAfterFinished deletes the finished Job (foreground, so its pods go first).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.support.apiserver.store import WatchEvent, parse_timestamp
from tests.support.sim.api import (
    JOBS,
    PODS,
    ClusterApi,
    Obj,
    condition,
    controller_uid,
    is_true,
    key_of,
    set_condition,
    terminal,
)
from tests.support.sim.clock import Clock, Timer
from tests.support.sim.policy import BACKOFF_LIMIT, COMPLETIONS, DEADLINE, backoff_seconds, failure_action

CONTROLLER = "job-controller"
FINALIZER = "batch.kubernetes.io/job-tracking"
Key = tuple[str, str]


@dataclass
class _Memory:
    """What the controller keeps about a Job besides its status: backoff and its timers."""

    failures: int = 0
    last_failure: datetime | None = None
    timers: dict[str, Timer] = field(default_factory=dict)

    def schedule(self, clock: Clock, name: str, at: datetime, callback: object) -> None:
        old = self.timers.get(name)
        if old is not None and not old.cancelled and old.at == at:
            return
        if old is not None:
            old.cancel()
        self.timers[name] = clock.call_at(at, callback)  # type: ignore[arg-type]

    def cancel(self, name: str) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            timer.cancel()


class JobController:
    def __init__(self, api: ClusterApi, clock: Clock) -> None:
        self.api = api
        self.clock = clock
        self.jobs: dict[Key, Obj] = {}
        self.by_uid: dict[str, Key] = {}
        self.pods: dict[str, dict[Key, Obj]] = {}  # by job uid
        self.memory: dict[str, _Memory] = {}
        self.dirty: set[Key] = set()
        self.orphans: set[Key] = set()

    # --- following the store ---------------------------------------------------------------------------

    def observe(self, event: WatchEvent) -> None:
        if event.rt.plural == "jobs":
            key = key_of(event.obj)
            uid = event.obj["metadata"]["uid"]
            if event.type == "DELETED":
                self.jobs.pop(key, None)
                self.by_uid.pop(uid, None)
                for timer in self.memory.pop(uid, _Memory()).timers.values():
                    timer.cancel()
                self.orphans.update(
                    k for k, p in self.pods.pop(uid, {}).items() if FINALIZER in _finalizers(p)
                )
            else:
                self.jobs[key] = event.obj
                self.by_uid[uid] = key
                self.dirty.add(key)
        elif event.rt.plural == "pods":
            pod = event.obj
            owner = controller_uid(pod)
            if owner is None:
                return
            key = key_of(pod)
            pods = self.pods.setdefault(owner, {})
            if event.type == "DELETED":
                pods.pop(key, None)
            else:
                pods[key] = pod
            job = self.by_uid.get(owner)
            if job is not None:
                self.dirty.add(job)
            elif event.type != "DELETED" and FINALIZER in _finalizers(pod):
                self.orphans.add(key)

    def requeue(self, key: Key) -> None:
        self.dirty.add(key)

    def flush(self) -> None:
        for pod_key in sorted(self.orphans):
            self.api.patch_meta(PODS, pod_key, {"finalizers": None})
        self.orphans.clear()
        while self.dirty:
            key = min(self.dirty)
            self.dirty.discard(key)
            if key in self.jobs:
                self._sync(self.jobs[key])

    # --- syncing one Job -------------------------------------------------------------------------------

    def _sync(self, job: Obj) -> None:
        key, uid = key_of(job), job["metadata"]["uid"]
        spec, status = job.get("spec") or {}, copy.deepcopy(job.get("status") or {})
        memory = self.memory.setdefault(uid, _Memory())
        pods = self.pods.get(uid, {})
        now = self.clock.now()
        stamp = self.api.now_stamp()
        finished = is_true(job, "Complete") or is_true(job, "Failed")
        deleting = bool(job["metadata"].get("deletionTimestamp"))

        # 1. count finished pods once, then release them
        release: list[Key] = []
        fail_now: tuple[str, str] | None = None
        for pod_key, pod in sorted(pods.items()):
            if FINALIZER not in _finalizers(pod):
                continue
            unbound_deleted = bool(pod["metadata"].get("deletionTimestamp")) and not pod["spec"].get(
                "nodeName"
            )
            if not (terminal(pod) or unbound_deleted):
                continue
            release.append(pod_key)
            if finished:
                continue
            if pod["status"].get("phase") == "Succeeded":
                status["succeeded"] = status.get("succeeded", 0) + 1
                memory.failures, memory.last_failure = 0, None
                continue
            if spec.get("suspend") and pod["metadata"].get("deletionTimestamp"):
                continue  # stopped by the suspension: not a failure of the job
            action, message = failure_action(spec.get("podFailurePolicy"), pod)
            if action == "Ignore":
                continue
            status["failed"] = status.get("failed", 0) + 1
            memory.failures += 1
            memory.last_failure = now
            if action == "FailJob" and fail_now is None:
                fail_now = ("PodFailurePolicy", message)

        active = {
            k: p for k, p in pods.items() if not terminal(p) and not p["metadata"].get("deletionTimestamp")
        }
        terminating = [
            k for k, p in pods.items() if not terminal(p) and p["metadata"].get("deletionTimestamp")
        ]
        terminating += [
            k for k, p in pods.items() if terminal(p) and k not in release and FINALIZER in _finalizers(p)
        ]
        suspended = bool(spec.get("suspend"))

        was = condition(job, "Suspended")
        resuming = not finished and not suspended and was is not None and was.get("status") == "True"
        if resuming:
            status["startTime"] = stamp  # the deadline counts from the resume

        # 2. the outcome, when there is one
        outcome: tuple[str, str, str] | None = None  # (interim condition, reason, message)
        if not finished:
            target = condition(job, "FailureTarget")
            met = condition(job, "SuccessCriteriaMet")
            deadline = self._deadline(spec, status, suspended)
            if target is not None and target.get("status") == "True":
                outcome = ("FailureTarget", target.get("reason", ""), target.get("message", ""))
            elif met is not None and met.get("status") == "True":
                outcome = ("SuccessCriteriaMet", *COMPLETIONS)
            elif fail_now is not None:
                outcome = ("FailureTarget", *fail_now)
            elif status.get("failed", 0) > int(spec.get("backoffLimit", 6)):
                outcome = ("FailureTarget", *BACKOFF_LIMIT)
            elif deadline is not None and now >= deadline:
                outcome = ("FailureTarget", *DEADLINE)
            elif status.get("succeeded", 0) >= int(spec.get("completions") or 1):
                outcome = ("SuccessCriteriaMet", *COMPLETIONS)
            elif deadline is not None:
                memory.schedule(self.clock, "deadline", deadline, lambda: self.requeue(key))

        # 3. the pods to delete or create
        if deleting or finished:
            pass
        elif outcome is not None or suspended:
            for pod_key in sorted(active):
                if self.api.delete(PODS, pod_key):
                    self.api.event(
                        job, "SuccessfulDelete", f"Deleted pod: {pod_key[1]}", component=CONTROLLER
                    )
                terminating.append(pod_key)
            active = {}
        else:
            if status.get("startTime") is None:
                status["startTime"] = stamp
                deadline = self._deadline(spec, status, suspended)
                if deadline is not None:
                    memory.schedule(self.clock, "deadline", deadline, lambda: self.requeue(key))
            wanted = min(
                int(spec.get("parallelism", 1)),
                int(spec.get("completions") or 1) - status.get("succeeded", 0),
            )
            if len(active) < wanted:
                ready_at = (
                    memory.last_failure + timedelta(seconds=backoff_seconds(memory.failures))
                    if memory.last_failure is not None
                    else now
                )
                if now >= ready_at:
                    for _ in range(wanted - len(active)):
                        created = self._create_pod(job)
                        active[key_of(created)] = created
                else:
                    memory.schedule(self.clock, "backoff", ready_at, lambda: self.requeue(key))

        # 4. suspension
        if not finished and outcome is None:
            if suspended and set_condition(
                status, "Suspended", True, stamp, "JobSuspended", message="Job suspended"
            ):
                self.api.event(job, "Suspended", "Job suspended", component=CONTROLLER)
                memory.cancel("deadline")
            elif resuming:
                set_condition(status, "Suspended", False, stamp, "JobResumed", message="Job resumed")
                self.api.event(job, "Resumed", "Job resumed", component=CONTROLLER)

        # 5. status, then the interim and final conditions
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active.values() if is_true(p, "Ready"))
        status["terminating"] = len(set(terminating))
        status.setdefault("uncountedTerminatedPods", {})
        for counter in ("active", "succeeded", "failed"):
            if not status.get(counter):
                status.pop(counter, None)
        if outcome is not None:
            interim, reason, message = outcome
            set_condition(status, interim, True, stamp, reason, message=message)
        self._write_status(job, status)
        for pod_key in release:
            self.api.patch_meta(PODS, pod_key, {"finalizers": None})
        if outcome is not None and not status.get("terminating"):
            interim, reason, message = outcome
            final = "Complete" if interim == "SuccessCriteriaMet" else "Failed"
            set_condition(status, final, True, stamp, reason, message=message)
            if final == "Complete":
                status["completionTime"] = stamp
                self.api.event(job, "Completed", "Job completed", component=CONTROLLER)
            else:
                self.api.event(job, reason, message, warning=True, component=CONTROLLER)
            memory.cancel("deadline")
            memory.cancel("backoff")
            self._write_status(job, status)
            finished = True
        if finished and not deleting:
            self._expire(job, status, memory)

    def _deadline(self, spec: Obj, status: Obj, suspended: bool) -> datetime | None:
        seconds = spec.get("activeDeadlineSeconds")
        if seconds is None or suspended or not status.get("startTime"):
            return None
        return parse_timestamp(status["startTime"]) + timedelta(seconds=int(seconds))

    def _expire(self, job: Obj, status: Obj, memory: _Memory) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        ended = status.get("completionTime") or next(
            (
                c.get("lastTransitionTime")
                for c in status.get("conditions") or []
                if c.get("type") == "Failed"
            ),
            None,
        )
        if not ended:
            return
        key = key_of(job)
        at = parse_timestamp(ended) + timedelta(seconds=int(ttl))

        def expire() -> None:
            if key in self.jobs and self.jobs[key]["metadata"]["uid"] == job["metadata"]["uid"]:
                self.api.delete(JOBS, key, propagation="Foreground")

        memory.schedule(self.clock, "ttl", at, expire)

    def _write_status(self, job: Obj, status: Obj) -> None:
        if status == (job.get("status") or {}):
            return

        def change(current: Obj) -> None:
            current["status"] = copy.deepcopy(status)

        self.api.mutate(JOBS, key_of(job), change)

    def _create_pod(self, job: Obj) -> Obj:
        meta = job["metadata"]
        template = copy.deepcopy(job["spec"]["template"])
        pod_meta = template.get("metadata") or {}
        pod_meta.pop("name", None)
        pod_meta["generateName"] = f"{meta['name']}-"
        pod_meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        pod_meta["finalizers"] = [FINALIZER]
        pod = self.api.create(
            PODS,
            meta["namespace"],
            {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template["spec"]},
        )
        self.api.event(
            job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", component=CONTROLLER
        )
        self.pods.setdefault(meta["uid"], {})[key_of(pod)] = pod
        return pod


def _finalizers(obj: Obj) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])
