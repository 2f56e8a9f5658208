"""The CronJob controller (v2, as in Kubernetes 1.31), on the simulator clock.

Each sync looks at one slot only: the most recent scheduled time after status.lastScheduleTime (or the
CronJob's creation) and not after now, in spec.timeZone (UTC when unset; DST handled by
runner.spec.cron's next_fire/last_fire_at_or_before). So after downtime only the latest missed slot
runs, once; with startingDeadlineSeconds a slot older than the deadline is skipped. concurrencyPolicy
Forbid leaves the slot waiting while a Job is active (it starts when that Job ends, if still within the
deadline), Replace deletes the active Jobs first, Allow just starts another. Jobs are named
`<cronjob>-<scheduled unix time in minutes>`, carry the jobTemplate's labels and annotations plus
batch.kubernetes.io/cronjob-scheduled-timestamp, and are owned by the CronJob. Finished Jobs beyond
successfulJobsHistoryLimit / failedJobsHistoryLimit are deleted oldest first.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from runner.spec.cron import parse_cron
from runner.spec.fire_times import last_fire_at_or_before, next_fire
from tests.support.apiserver.store import WatchEvent, parse_timestamp, timestamp
from tests.support.sim.api import CRONJOBS, JOBS, ClusterApi, Obj, controller_uid, is_true, key_of
from tests.support.sim.clock import Clock, Timer

CONTROLLER = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
Key = tuple[str, str]


def job_name(cronjob: str, scheduled: datetime) -> str:
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def rfc3339(moment: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(zone))
    text = local.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def job_for_slot(cronjob: Obj, name: str, slot: datetime, zone: str) -> Obj:
    """The Job the CronJob controller creates for a slot: the jobTemplate, the scheduled-timestamp
    annotation, and the CronJob as its controlling owner."""
    template = copy.deepcopy(cronjob["spec"].get("jobTemplate") or {})
    template_meta = template.get("metadata") or {}
    annotations = {**(template_meta.get("annotations") or {}), SCHEDULED_ANNOTATION: rfc3339(slot, zone)}
    metadata: Obj = {
        "name": name,
        "annotations": annotations,
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob["metadata"]["name"],
                "uid": cronjob["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if template_meta.get("labels"):
        metadata["labels"] = dict(template_meta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": template.get("spec") or {},
    }


def _finished(job: Obj) -> str | None:
    for kind in ("Complete", "Failed"):
        if is_true(job, kind):
            return kind
    return None


class CronJobController:
    def __init__(self, api: ClusterApi, clock: Clock) -> None:
        self.api = api
        self.clock = clock
        self.cronjobs: dict[Key, Obj] = {}
        self.by_uid: dict[str, Key] = {}
        self.jobs: dict[str, dict[Key, Obj]] = {}  # by owning CronJob uid
        self.timers: dict[str, Timer] = {}
        self.dirty: set[Key] = set()

    def observe(self, event: WatchEvent) -> None:
        obj = event.obj
        if event.rt.plural == "cronjobs":
            key, uid = key_of(obj), obj["metadata"]["uid"]
            if event.type == "DELETED":
                self.cronjobs.pop(key, None)
                self.by_uid.pop(uid, None)
                timer = self.timers.pop(uid, None)
                if timer is not None:
                    timer.cancel()
            else:
                self.cronjobs[key] = obj
                self.by_uid[uid] = key
                self.dirty.add(key)
        elif event.rt.plural == "jobs":
            owner = controller_uid(obj)
            if owner is None:
                return
            jobs = self.jobs.setdefault(owner, {})
            if event.type == "DELETED":
                jobs.pop(key_of(obj), None)
            else:
                jobs[key_of(obj)] = obj
            if owner in self.by_uid:
                self.dirty.add(self.by_uid[owner])

    def flush(self) -> None:
        while self.dirty:
            key = min(self.dirty)
            self.dirty.discard(key)
            if key in self.cronjobs:
                self._sync(self.cronjobs[key])

    def _sync(self, cronjob: Obj) -> None:
        meta, spec = cronjob["metadata"], cronjob.get("spec") or {}
        uid, key = meta["uid"], key_of(cronjob)
        status = copy.deepcopy(cronjob.get("status") or {})
        jobs = self.jobs.get(uid, {})
        now = self.clock.now()
        zone = spec.get("timeZone") or "UTC"
        if meta.get("deletionTimestamp"):
            return

        # what ended since the last look, and the history to keep
        was_active = {ref.get("name") for ref in status.get("active") or []}
        active = sorted(
            (j for j in jobs.values() if not _finished(j) and not j["metadata"].get("deletionTimestamp")),
            key=lambda j: j["metadata"]["name"],
        )
        for job in sorted(jobs.values(), key=lambda j: j["metadata"]["name"]):
            outcome = _finished(job)
            if outcome and job["metadata"]["name"] in was_active:
                message = f"Saw completed job: {job['metadata']['name']}, status: {outcome}"
                self.api.event(cronjob, "SawCompletedJob", message, component=CONTROLLER)
            completed = (job.get("status") or {}).get("completionTime")
            if outcome == "Complete" and completed and completed > (status.get("lastSuccessfulTime") or ""):
                status["lastSuccessfulTime"] = completed
        self._clean_history(cronjob, jobs)

        if not spec.get("suspend"):
            active = self._run_due(cronjob, status, active, now, zone)
            following = next_fire(parse_cron(spec["schedule"]), now, zone, rule="kubernetes")
            if following is not None:
                self._wake(uid, key, following)
        known = {ref.get("name"): ref for ref in status.get("active") or []}
        status["active"] = [known.get(job["metadata"]["name"]) or self._reference(job) for job in active]
        if not status["active"]:
            del status["active"]
        if status != (cronjob.get("status") or {}):

            def change(current: Obj) -> None:
                current["status"] = status

            self.api.mutate(CRONJOBS, key, change)

    def _run_due(self, cronjob: Obj, status: Obj, active: list[Obj], now: datetime, zone: str) -> list[Obj]:
        meta, spec = cronjob["metadata"], cronjob["spec"]
        schedule = parse_cron(spec["schedule"])
        earliest = parse_timestamp(status.get("lastScheduleTime") or meta["creationTimestamp"])
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        slot = last_fire_at_or_before(schedule, now, zone, rule="kubernetes")
        if slot is None or slot <= earliest:
            return active
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            message = "Not starting job because prior execution is running and concurrency policy is Forbid"
            self.api.event(cronjob, "JobAlreadyActive", message, component=CONTROLLER)
            return active
        if policy == "Replace":
            for running in active:
                if self.api.delete(JOBS, key_of(running)):
                    self.api.event(
                        cronjob,
                        "SuccessfulDelete",
                        f"Deleted job {running['metadata']['name']}",
                        component=CONTROLLER,
                    )
            active = []
        name = job_name(meta["name"], slot)
        job: Obj | None = self.api.store.find(JOBS, meta["namespace"], name)
        if job is None:
            job = self.api.create(JOBS, meta["namespace"], job_for_slot(cronjob, name, slot, zone))
            self.api.event(cronjob, "SuccessfulCreate", f"Created job {name}", component=CONTROLLER)
        if not _finished(job) and all(j["metadata"]["name"] != name for j in active):
            active = [*active, job]
        status["lastScheduleTime"] = timestamp(slot)
        return active

    def _clean_history(self, cronjob: Obj, jobs: dict[Key, Obj]) -> None:
        spec = cronjob["spec"]
        for outcome, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit", 3)),
            ("Failed", spec.get("failedJobsHistoryLimit", 1)),
        ):
            if limit is None:
                continue
            done = [
                j
                for j in jobs.values()
                if _finished(j) == outcome and not j["metadata"].get("deletionTimestamp")
            ]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or "", j["metadata"]["name"]))
            for job in done[: max(0, len(done) - int(limit))]:
                if self.api.delete(JOBS, key_of(job)):
                    self.api.event(
                        cronjob,
                        "SuccessfulDelete",
                        f"Deleted job {job['metadata']['name']}",
                        component=CONTROLLER,
                    )

    def _wake(self, uid: str, key: Key, at: datetime) -> None:
        timer = self.timers.get(uid)
        if timer is not None and not timer.cancelled and timer.at == at:
            return
        if timer is not None:
            timer.cancel()
        self.timers[uid] = self.clock.call_at(at.astimezone(UTC), lambda: self.dirty.add(key))

    @staticmethod
    def _reference(job: Obj) -> Obj:
        meta = job["metadata"]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion", ""),
        }
