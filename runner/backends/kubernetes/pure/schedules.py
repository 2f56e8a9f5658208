"""A schedule on a cluster, for people: pure functions from CronJobs and their Jobs (plain API dicts).

runner.backends.kubernetes.cronjobs does the talking to the API; here are its decisions, testable without a
cluster: what `runner schedule list` shows of a CronJob (last and next run, active runs, the last
result), the Job that a manual trigger creates (as `kubectl create job --from=cronjob/NAME` makes it),
and which of a schedule's ConfigMaps no run needs any more.
"""

from __future__ import annotations

import copy
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.backends.kubernetes.pure.status import job_outcome
from runner.records import RunState
from runner.spec.cron import next_fire as next_fire_in_zone
from runner.spec.cron import parse_cron
from runner.spec.labels import JOB_LABEL, SCHEDULE_LABEL

# What kubectl create job --from=cronjob/NAME puts on the Job, and the CronJob controller on its own.
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


@dataclass(frozen=True)
class ScheduleView:
    """One runner schedule on a cluster, as `runner schedule list` shows it.

    active       the run ids (Job names) of its unfinished runs
    last_run     its newest run, whether the CronJob or a trigger started it; last_result its state
    next_run     when the CronJob fires next (None while suspended, or for a cron that never fires)
    """

    name: str
    namespace: str
    job: str
    cron: str
    time_zone: str
    concurrency: str
    suspended: bool
    last_schedule: datetime | None
    last_successful: datetime | None
    active: tuple[str, ...]
    last_run: str | None
    last_result: RunState | None
    next_run: datetime | None
    image: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for -o json/yaml: timestamps in ISO 8601 (UTC), states as their names."""

        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")

        return {
            "name": self.name,
            "namespace": self.namespace,
            "job": self.job,
            "cron": self.cron,
            "timeZone": self.time_zone,
            "concurrency": self.concurrency,
            "suspended": self.suspended,
            "lastScheduleTime": moment(self.last_schedule),
            "lastSuccessfulTime": moment(self.last_successful),
            "active": list(self.active),
            "lastRun": self.last_run,
            "lastResult": None if self.last_result is None else str(self.last_result),
            "nextRun": moment(self.next_run),
            "image": self.image,
        }


def schedule_view(
    cronjob: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]], now: datetime
) -> ScheduleView:
    """What a CronJob and the Jobs of its schedule (runner.dev/schedule) say, at now (aware)."""
    metadata, spec = cronjob["metadata"], cronjob.get("spec") or {}
    status = cronjob.get("status") or {}
    labels = metadata.get("labels") or {}
    name = metadata["name"]
    runs = sorted(jobs, key=_started)
    unfinished = [job["metadata"]["name"] for job in runs if job_outcome(job.get("status") or {}) is None]
    # The controller's active list, and unfinished Jobs it has not listed yet (a trigger's, a moment ago).
    active = [ref.get("name", "") for ref in status.get("active") or []]
    active += [job_name for job_name in unfinished if job_name not in active]
    suspended = bool(spec.get("suspend"))
    time_zone = spec.get("timeZone") or "UTC"
    containers = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec", {})
    image = next((c.get("image") for c in containers.get("containers") or []), None)
    return ScheduleView(
        name=name,
        namespace=metadata.get("namespace", ""),
        job=labels.get(JOB_LABEL, name),
        cron=spec.get("schedule", ""),
        time_zone=time_zone,
        concurrency=spec.get("concurrencyPolicy", "Allow"),
        suspended=suspended,
        last_schedule=_timestamp(status.get("lastScheduleTime")),
        last_successful=_timestamp(status.get("lastSuccessfulTime")),
        active=tuple(active),
        last_run=runs[-1]["metadata"]["name"] if runs else None,
        last_result=job_state(runs[-1]) if runs else None,
        next_run=None if suspended else next_fire(spec.get("schedule", ""), time_zone, now),
        image=image,
    )


def job_state(job: Mapping[str, Any]) -> RunState:
    """A run's state from its Job alone: its outcome once finished, else running or pending."""
    status = job.get("status") or {}
    outcome = job_outcome(status)
    if outcome is not None:
        return outcome[0]
    return RunState.RUNNING if int(status.get("active") or 0) > 0 else RunState.PENDING


def next_fire(cron: str, time_zone: str, after: datetime) -> datetime | None:
    """The first moment strictly after `after` at which cron fires in time_zone, as an aware UTC time
    (runner.spec.cron.next_fire: wall-clock times of the zone, daylight-saving changes included);
    None for a schedule that never fires again, or one the API server took and runner.spec does not."""
    try:
        schedule = parse_cron(cron)
        return next_fire_in_zone(schedule, after, time_zone, rule="kubernetes")
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None


def manual_job(cronjob: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The Job that `kubectl create job NAME --from=cronjob/CRONJOB` creates: the jobTemplate's labels,
    annotations and spec, annotated as manually instantiated, controlled by the CronJob (whose uid it
    needs: the CronJob as read from the API), so deleting the schedule deletes it."""
    metadata = cronjob["metadata"]
    if not metadata.get("uid"):
        raise ValueError("manual_job needs the CronJob as stored: its metadata has no uid")
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    template_metadata = template.get("metadata") or {}
    job_metadata: dict[str, Any] = {"name": name}
    if metadata.get("namespace"):
        job_metadata["namespace"] = metadata["namespace"]
    job_metadata["labels"] = dict(template_metadata.get("labels") or {})
    job_metadata["annotations"] = {
        INSTANTIATE_ANNOTATION: "manual",
        **(template_metadata.get("annotations") or {}),
    }
    job_metadata["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_metadata, "spec": template["spec"]}


def unused_config_maps(
    config_maps: Sequence[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]], current: str
) -> list[str]:
    """Names of a schedule's ConfigMaps that nothing needs: not the current one, and not mounted by an
    unfinished Job (a pod of a run templated before the last apply may still start, or be retried)."""
    needed = {current}
    for job in jobs:
        if job_outcome(job.get("status") or {}) is not None:
            continue
        pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        needed |= {
            volume["configMap"]["name"]
            for volume in pod.get("volumes") or []
            if (volume.get("configMap") or {}).get("name")
        }
    return sorted(cm["metadata"]["name"] for cm in config_maps if cm["metadata"]["name"] not in needed)


def schedule_of(obj: Mapping[str, Any]) -> str | None:
    """The schedule an object belongs to, by its runner.dev/schedule label."""
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(SCHEDULE_LABEL)


def _started(job: Mapping[str, Any]) -> tuple[datetime, str]:
    """A run's order: when it was scheduled (a trigger's: when created), then its name."""
    metadata = job["metadata"]
    annotations = metadata.get("annotations") or {}
    moment = _timestamp(annotations.get(SCHEDULED_ANNOTATION)) or _timestamp(
        metadata.get("creationTimestamp")
    )
    return moment or datetime.min.replace(tzinfo=UTC), metadata["name"]


def _timestamp(text: str | None) -> datetime | None:
    """An API timestamp (RFC 3339, 'Z' or an offset) as an aware datetime."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = [
    "INSTANTIATE_ANNOTATION",
    "SCHEDULED_ANNOTATION",
    "ScheduleView",
    "job_state",
    "manual_job",
    "next_fire",
    "schedule_of",
    "schedule_view",
    "unused_config_maps",
]
