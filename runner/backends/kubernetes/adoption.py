"""Adoption: the namespace's runner Jobs that this machine has not recorded become runs here.

Labels on the cluster are the truth: runs submitted from elsewhere (another laptop, CI) and the runs of
schedules become visible to list, status, logs and cancel. The Jobs are listed metadata-only; whole Jobs
are read only for names not recorded here, each recorded with the state its Job holds, and for known runs
whose Job changed since it was last read (RunRecord.seen). Of the known runs only that (and their ids) is
read from the records first: the records of the few the listing leaves behind are read whole after it.
A fresh home (no run of the namespace recorded here) lists the Jobs whole at once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from runner.backends.kubernetes import client
from runner.backends.kubernetes.client import (
    JOBS_PATH,
    api_error,
    api_status,
    default_namespace,
    get_json,
    job_metadata,
    list_pages,
)
from runner.backends.kubernetes.pure.reading import (
    job_changes,
    parse_time,
    pod_changes,
    stale_since_seen,
)
from runner.clock import Clock
from runner.config import Settings
from runner.records import RunRecord, RunRecords, RunState
from runner.render.kubernetes.conventions import GPU_RESOURCE
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER, RUN_LABEL, SCHEDULE_LABEL

BACKEND = "kubernetes"
LIVE = (RunState.PENDING, RunState.RUNNING)  # the recorded states of the runs adoption brings up to date


PodsOf = Callable[[str, list[str]], dict[str, list[dict[str, Any]]]]  # namespace, run ids: pods by run
# namespace, known live runs the listing leaves behind, the metadata of its runner Jobs by name: those
# runs brought up to date
Refresh = Callable[[str, list[RunRecord], Mapping[str, Mapping[str, Any]]], dict[str, RunRecord]]


def adopt_jobs(
    records: RunRecords,
    namespace: str | None,
    settings: Settings,
    *,
    context: str | None,
    clock: Clock,
    pods_of: PodsOf,
    refresh: Refresh,
) -> list[str]:
    """Record every runner Job of the namespace that this machine does not know yet, and bring the
    runs it knows there up to date; the run ids of both (a list need not refresh them again).

    Labels on the cluster are the truth: runs submitted from elsewhere (another laptop, CI) become
    visible to list, status, logs and cancel here, and so do the runs of schedules (Jobs a CronJob
    or a trigger created), whose run id is their Job's name and whose record carries the schedule's
    label. Every run's Job is named by its run id, so the namespace's runner Jobs are listed
    metadata-only (name, labels, resourceVersion, without managedFields: a small part of whole Jobs),
    and whole Jobs are read only for the runs not recorded here (named in one selector when they are
    few) and, through refresh, for known live runs whose Job changed since it was last read or whose
    state needs their pods: of the others only the id and seen are read from the records, not the
    records themselves. A home that records no run of the namespace and context (a fresh one) lists
    the Jobs whole at once instead: every one is new there. Each new run is recorded as a refresh would
    leave it: from its Job, and from its pods (pods_of, one LIST) where the Job alone cannot tell
    running from waiting.
    """
    namespace = namespace or default_namespace(context)
    launch = {"namespace": namespace, "context": context}
    # read before the Jobs are listed: a run recorded with its Job created has it in the listing
    seen = records.seen(backend=BACKEND, launch=launch, states=LIVE)
    fresh_home = not seen and not records.holds(backend=BACKEND, launch=launch)
    doing = f"listing the runner's Jobs in {namespace}"
    try:
        listed, jobs = new_jobs(records, context, namespace, fresh_home=fresh_home)
    except Exception as error:
        raise api_error(error, doing) from None
    # each page's Jobs are made records while the API server makes the next page (list_pages)
    found = [
        adopted
        for job in said_as(jobs, doing)
        for adopted in [adoptable(job, namespace, settings, context=context, clock=clock)]
        if adopted is not None
    ]
    adopted = record_adopted(found, records, namespace, pods_of)
    stale = stale_since_seen(seen, listed)
    # loaded now, whole, only the runs the listing leaves behind (and only while still live)
    fresh = refresh(namespace, records.list(ids=stale, states=LIVE), listed) if stale else {}
    return adopted + [run_id for run_id in seen if run_id in fresh or run_id not in stale]


def new_jobs(
    records: RunRecords, context: str | None, namespace: str, *, fresh_home: bool
) -> tuple[dict[str, dict[str, Any]], Iterable[dict[str, Any]]]:
    """The metadata of the namespace's runner Jobs by name, and the whole Jobs of those not recorded
    here. A fresh home (the records hold no run of the namespace and context) lists every runner Job
    whole at once, its metadata left empty: each is new, and a metadata list first would only add to it.
    Those Jobs come page by page, as the caller takes them."""
    selector = f"{MANAGED_BY}={MANAGER}"
    if fresh_home:
        return {}, list_pages(context, JOBS_PATH, namespace, selector)
    listed = job_metadata(context, namespace, selector)
    known = records.ids()
    unknown = [
        name
        for name, metadata in listed.items()
        if (run_id := adopted_run_id(name, dict(metadata.get("labels") or {}))) and run_id not in known
    ]
    return listed, unknown_jobs(context, namespace, unknown) if unknown else []


def said_as(jobs: Iterable[dict[str, Any]], doing: str) -> Iterator[dict[str, Any]]:
    """jobs, whose listing's failures (it goes on as they are taken) are said as doing (api_error)."""
    try:
        yield from jobs
    except Exception as error:
        raise api_error(error, doing) from None


def record_adopted(
    found: list[tuple[RunRecord, bool]], records: RunRecords, namespace: str, pods_of: PodsOf
) -> list[str]:
    """Record the runs found on the cluster, those whose Job cannot tell (needs_pods) completed from
    their pods (one LIST for all), in one transaction; the ids of those recorded (a run recorded
    meanwhile, submitted from here, is left to its submission)."""
    waiting = [record.id for record, needs_pods in found if needs_pods]
    try:
        pods = pods_of(namespace, waiting) if waiting else {}
    except Exception as error:
        raise api_error(error, f"listing the pods of runner's Jobs in {namespace}") from None
    # a run recorded meanwhile (submitted from here) is left to its submission
    return records.create_new(
        [
            replace(record, **pod_changes(record, pods.get(record.id, []), {})) if needs_pods else record
            for record, needs_pods in found
        ]
    )


def unknown_jobs(context: str | None, namespace: str, names: list[str]) -> list[dict[str, Any]]:
    """The whole Jobs of these names: those carrying their name as run label in one selector when
    they are few, then the rest (a schedule's runs, which have no run label) by a GET each; else
    those of every runner Job of the namespace. One that is gone meanwhile is left out."""
    if len(names) > client.SELECT_AT_MOST:
        wanted = set(names)
        every = list_pages(context, JOBS_PATH, namespace, f"{MANAGED_BY}={MANAGER}")
        return [job for job in every if job["metadata"]["name"] in wanted]
    selector = f"{MANAGED_BY}={MANAGER},{RUN_LABEL} in ({','.join(sorted(names))})"
    jobs = list(list_pages(context, JOBS_PATH, namespace, selector))
    found = {job["metadata"]["name"] for job in jobs}
    for name in sorted(set(names) - found):
        try:
            jobs.append(get_json(context, f"{JOBS_PATH}/{name}", namespace))
        except Exception as error:
            if api_status(error) != 404:
                raise
    return jobs


def adoptable(
    job: dict[str, Any],
    namespace: str,
    settings: Settings,
    *,
    context: str | None,
    clock: Clock,
) -> tuple[RunRecord, bool] | None:
    """The record of a runner Job (raw JSON) as a run found on the cluster, and whether its pods must be
    read for the rest (job_changes); None for a Job that is no run (adopted_run_id). Whether the run is
    recorded already is for the caller to know (RunRecords.create_new)."""
    meta = job["metadata"]
    labels = dict(meta.get("labels") or {})
    run_id = adopted_run_id(meta["name"], labels)
    if not run_id:
        return None
    schedule = labels.get(SCHEDULE_LABEL)
    labels[RUN_LABEL] = run_id
    spec = job.get("spec") or {}
    container = spec["template"]["spec"]["containers"][0]
    env = {
        item["name"]: item["value"] for item in container.get("env") or [] if item.get("value") is not None
    }
    found = RunRecord(
        id=run_id,
        job=labels.get(JOB_LABEL, run_id.rsplit("-", 1)[0]),
        backend=BACKEND,
        state=RunState.PENDING,
        created=parse_time(meta.get("creationTimestamp")) or clock.time(),
        workdir="",
        store_url=env.get("RUNNER_STORE", settings.store_url),
        manifest="",
        launch={
            "namespace": namespace,
            "context": context,
            "created": True,
            "image": container.get("image"),
            **requested(spec, container),
        },
        labels=labels,
        max_attempts=int(spec.get("backoffLimit") or 0) + 1,
        message=f"started by schedule {schedule}" if schedule else "found on the cluster",
    )
    # The listing holds each Job's status: a finished run is adopted finished, so listing thousands
    # of adopted runs reads pods only for those still going.
    changes, needs_pods = job_changes(found, job)
    return replace(found, **changes), needs_pods


def requested(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """What a run's launch records of its request, read back from its Job: GPUs and memory per worker,
    and the workers (an Indexed Job's completions), so that an adopted run waiting for GPUs says how
    many, and one killed for memory says its limit. The GPU type is left out: the Job holds only the
    node labels it stands for."""
    limits = (container.get("resources") or {}).get("limits") or {}
    found: dict[str, Any] = {"gpus": int(limits.get(GPU_RESOURCE) or 0)}
    if "memory" in limits:
        with contextlib.suppress(ValueError, TypeError):
            found["memory"] = memory_limit(limits["memory"])
    if spec.get("completionMode") == "Indexed":
        found["workers"] = int(spec.get("completions") or 1)
    return found


@functools.lru_cache(maxsize=64)
def memory_limit(quantity: str | int) -> int:
    """A memory limit in bytes (parse_memory), remembered: thousands of adopted Jobs hold a few values."""
    from runner.spec.quantities import parse_memory

    return parse_memory(quantity)


def adopted_run_id(job_name: str, labels: dict[str, str]) -> str | None:
    """The run a runner Job is: its runner.dev/run label, or for a schedule's Job (no run label, which
    the CronJob cannot know) the Job's name; None for anything else carrying the runner's labels."""
    if labels.get(RUN_LABEL):
        return labels[RUN_LABEL]
    return job_name if labels.get(SCHEDULE_LABEL) else None
