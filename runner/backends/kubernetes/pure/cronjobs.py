"""The pure half of runner.backends.kubernetes.cronjobs: decisions from CronJobs and their Jobs (plain
API dicts), testable without a cluster.

cronjobs.py does the talking to the API; here is what it decides: the ScheduleView of a CronJob (last
and next run, active runs, the last result; the one view runner.records.schedule_view defines for
every schedule), when a CronJob fires next, the Job that a manual trigger creates (as `kubectl create
job --from=cronjob/NAME` makes it), and which of a schedule's ConfigMaps no run needs any more.
"""

from __future__ import annotations

import copy
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runner.backends.kubernetes.pure.status import job_outcome
from runner.records import RunState
from runner.records.schedule_view import ScheduleView
from runner.spec.cron import parse_cron
from runner.spec.fire_times import next_fire
from runner.spec.labels import JOB_LABEL, SCHEDULE_LABEL

# What kubectl create job --from=cronjob/NAME puts on the Job, and the CronJob controller on its own.
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def cronjob_view(
    cronjob: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]], now: datetime
) -> ScheduleView:
    """What a CronJob and the Jobs of its schedule (runner.dev/schedule) say, at now (aware): the next
    run in the CronJob's zone, the newest Job as the last run."""
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
    upcoming = None if suspended else next_cronjob_fire(spec.get("schedule", ""), time_zone, now)
    return ScheduleView(
        name=name,
        backend="kubernetes",
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
        next_run=None if upcoming is None else upcoming.astimezone(zoneinfo.ZoneInfo(time_zone)),
        image=image,
    )


def job_state(job: Mapping[str, Any]) -> RunState:
    """A run's state from its Job alone: its outcome once finished, else running or pending."""
    status = job.get("status") or {}
    outcome = job_outcome(status)
    if outcome is not None:
        return outcome[0]
    return RunState.RUNNING if int(status.get("active") or 0) > 0 else RunState.PENDING


def next_cronjob_fire(cron: str, time_zone: str, after: datetime) -> datetime | None:
    """The first moment strictly after `after` at which a CronJob of cron and time_zone fires, as an
    aware UTC time: runner.spec.cron.next_fire under the CronJob controller's daylight-saving rule
    (rule="kubernetes"), from the CronJob's text; None for a schedule that never fires again, or one
    the API server took and runner.spec does not."""
    try:
        schedule = parse_cron(cron)
        return next_fire(schedule, after, time_zone, rule="kubernetes")
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


def labelled_schedule(obj: Mapping[str, Any]) -> str | None:
    """The schedule an API object (CronJob, Job, ConfigMap) belongs to, by its runner.dev/schedule label."""
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
    "cronjob_view",
    "job_state",
    "labelled_schedule",
    "manual_job",
    "next_cronjob_fire",
    "unused_config_maps",
]
