"""The objects of a run (a ConfigMap and a batch/v1 Job) or of a schedule (a ConfigMap and a batch/v1
CronJob, whose Jobs are its runs), from a manifest and a ClusterTarget. Pure.

render_run and render_schedule return plain dicts in the order to apply them (the ConfigMap first: the
pods mount it). render_job and render_cronjob are the same with the target's fields as keywords.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from runner.errors import UserError
from runner.render.kubernetes.checks import check_name
from runner.render.kubernetes.conventions import (
    APP_NAME,
    CONFIG_MAP_DIGEST,
    CONTAINER,
    DEFAULT_CONTAINER,
    DEFAULT_GRACE,
    FAILED_JOBS_HISTORY,
    MANIFEST_FILE,
    MANIFEST_SHA256,
    MAX_CRONJOB_NAME,
    NAME_LABEL,
    QUEUE_LABEL,
    SUCCESSFUL_JOBS_HISTORY,
    TTL_SECONDS,
    UNRETRYABLE_EXIT_CODES,
)
from runner.render.kubernetes.pod import pod_spec
from runner.render.kubernetes.target import Checked, ClusterTarget, check
from runner.render.kubernetes.workers import all_or_nothing_rule, check_workers, worker_service
from runner.spec import JobManifest
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER, RUN_LABEL, SCHEDULE_LABEL, run_labels


def render_run(
    manifest: JobManifest, target: ClusterTarget, *, run_id: str, manifest_text: str | None = None
) -> list[dict[str, Any]]:
    """The objects that run one run of manifest on target, in the order to apply them: its ConfigMap
    (the resolved manifest, manifest_text as stored with the run, default resolved_yaml(manifest)) and
    its Job, both named run_id (a DNS label, at most 63). A multi-worker run (spec.workers > 1) has a
    headless Service of that name between them (workers.py): its pods' names resolve once they start.

    Raises UserError for what cannot run on a cluster (see check): local input paths, credentials in
    URLs or in the manifest's env, mounts over the container's system directories.
    """
    check_name(run_id, "run id", "a run id is <job>-<suffix>, like mnist-k3x9q2")
    check_workers(manifest, run_id)
    checked = check(manifest, target, manifest_text)
    labels = job_labels(manifest, run_id)
    config_map = _config_map(run_id, labels, checked)
    pod = pod_spec(checked, config_map=run_id, run_id=run_id)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(run_id, checked.namespace, _with_queue(manifest, labels), checked.annotations),
        "spec": _job_spec(labels, pod, checked),
    }
    if manifest.spec.workers == 1:
        return [config_map, job]
    service = worker_service(
        run_id, _metadata(run_id, checked.namespace, labels, {MANIFEST_SHA256: checked.digest})
    )
    return [config_map, service, job]


def render_schedule(
    manifest: JobManifest, target: ClusterTarget, *, manifest_text: str | None = None
) -> list[dict[str, Any]]:
    """The objects of manifest's schedule (spec.schedule) on target: a ConfigMap, then a CronJob.

    The CronJob is named after the job (the schedule's name); each Job it creates is one run, an
    ordinary one: the same pod as render_run's, labelled runner.dev/schedule, whose run id is the Job's
    name. The ConfigMap holds the resolved manifest for all of them; its name carries the manifest's
    digest (<job>-<10 hex digits>), so a run never reads a manifest other than the one its Job was
    templated with, and it cannot clash with a run's ConfigMap (named <job>-<6 characters>).

    Raises UserError for a manifest without a schedule, and for what render_run refuses.
    """
    schedule = manifest.spec.schedule
    if schedule is None:
        raise UserError(
            f"job {manifest.name!r} has no schedule",
            hint="add spec.schedule, e.g. schedule: {cron: '0 2 * * *', timeZone: Europe/Berlin}",
        )
    name = manifest.name
    # Validated manifests have names of at most MAX_NAME_LENGTH (52, a test keeps it so); one built
    # around the validation is refused here rather than by the API server.
    check_name(name, "job name", f"a schedule's name is its job's: at most {MAX_CRONJOB_NAME} characters")
    if len(name) > MAX_CRONJOB_NAME:
        raise UserError(
            f"job name {name!r} is longer than the {MAX_CRONJOB_NAME} characters a CronJob's name may have",
            hint="shorten metadata.name",
        )
    check_workers(manifest, None)
    checked = check(manifest, target, manifest_text)
    labels = schedule_labels(manifest)
    config_map = _config_map(schedule_config_map_name(name, checked.digest), labels, checked)
    pod = pod_spec(checked, config_map=config_map["metadata"]["name"], run_id=None)
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(name, checked.namespace, labels, checked.annotations),
        "spec": {
            "schedule": schedule.cron,
            "timeZone": schedule.time_zone,
            "concurrencyPolicy": schedule.concurrency,
            "suspend": schedule.suspend,
            # A slot missed by up to this long (the controller was down, Forbid waited on a long run)
            # still starts; one missed by more is skipped, and the CronJob records it.
            "startingDeadlineSeconds": schedule.starting_deadline,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
            "jobTemplate": {
                "metadata": {
                    "labels": _sorted(_with_queue(manifest, labels)),
                    "annotations": _sorted(checked.annotations),
                },
                "spec": _job_spec(labels, pod, checked),
            },
        },
    }
    return [config_map, cronjob]


def render_job(
    manifest: JobManifest,
    *,
    run_id: str,
    image: str,
    store_url: str,
    namespace: str | None = None,
    store_secret: str | None = None,
    manifest_text: str | None = None,
    inputs: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    ttl_seconds: int = TTL_SECONDS,
) -> list[dict[str, Any]]:
    """render_run with the target's fields as keywords (ClusterTarget says what each means)."""
    target = ClusterTarget(
        image=image,
        store_url=store_url,
        namespace=namespace,
        store_secret=store_secret,
        inputs=inputs or {},
        grace=grace,
        ttl_seconds=ttl_seconds,
    )
    return render_run(manifest, target, run_id=run_id, manifest_text=manifest_text)


def render_cronjob(
    manifest: JobManifest,
    *,
    image: str,
    store_url: str,
    namespace: str | None = None,
    store_secret: str | None = None,
    manifest_text: str | None = None,
    inputs: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    ttl_seconds: int = TTL_SECONDS,
) -> list[dict[str, Any]]:
    """render_schedule with the target's fields as keywords (ClusterTarget says what each means)."""
    target = ClusterTarget(
        image=image,
        store_url=store_url,
        namespace=namespace,
        store_secret=store_secret,
        inputs=inputs or {},
        grace=grace,
        ttl_seconds=ttl_seconds,
    )
    return render_schedule(manifest, target, manifest_text=manifest_text)


def job_labels(manifest: JobManifest, run_id: str) -> dict[str, str]:
    """The run's labels: the manifest's, then the runner's (which win on a clash), sorted by key."""
    return _sorted({**run_labels(manifest.metadata.labels, manifest.name, run_id), NAME_LABEL: APP_NAME})


def schedule_labels(manifest: JobManifest) -> dict[str, str]:
    """A schedule's labels, on its CronJob, ConfigMap, Jobs and pods: the manifest's, then the runner's
    with runner.dev/schedule instead of runner.dev/run (no run exists yet), sorted by key."""
    labels = {
        **manifest.metadata.labels,
        MANAGED_BY: MANAGER,
        JOB_LABEL: manifest.name,
        SCHEDULE_LABEL: manifest.name,
        NAME_LABEL: APP_NAME,
    }
    labels.pop(RUN_LABEL, None)
    return _sorted(labels)


def schedule_config_map_name(name: str, digest: str) -> str:
    """The ConfigMap of a schedule whose resolved manifest has this sha256 digest (hex)."""
    return f"{name}-{digest[:CONFIG_MAP_DIGEST]}"


def owned_by(obj: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of obj owned by the created job (whose metadata carries its uid), so that Kubernetes
    deletes obj with the Job (ttlSecondsAfterFinished). A uid only exists once the Job is created:
    the backend applies the ConfigMap, creates the Job, then patches the ConfigMap with this."""
    metadata = job["metadata"]
    if not metadata.get("uid"):
        raise ValueError("owned_by needs the Job as created: its metadata has no uid")
    owned = copy.deepcopy(dict(obj))
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": metadata["name"], "uid": metadata["uid"]}
    ]
    return owned


def pod_failure_policy(workers: int = 1) -> dict[str, Any]:
    """Disruptions (preemption, eviction, node drain) are not failures of the job: they are retried
    without counting against backoffLimit. A command that cannot start fails the Job at once. With
    several workers, any worker's failure fails the Job at once (all or nothing: workers.py). The
    Job controller tries the rules in order and the first that matches decides, so the Ignore rule
    comes first: a disrupted pod's container also ends with a non-zero code."""
    rules: list[dict[str, Any]] = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": CONTAINER,
                "operator": "In",
                "values": list(UNRETRYABLE_EXIT_CODES),
            },
        },
    ]
    if workers > 1:
        rules.append(all_or_nothing_rule())
    return {"rules": rules}


def _config_map(name: str, labels: Mapping[str, str], checked: Checked) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, checked.namespace, labels, {MANIFEST_SHA256: checked.digest}),
        # The manifest of a run never changes (a schedule's ConfigMap is named by its digest);
        # immutable ConfigMaps also spare the kubelet a watch.
        "immutable": True,
        "data": {MANIFEST_FILE: checked.manifest_text},
    }


def _with_queue(manifest: JobManifest, labels: Mapping[str, str]) -> dict[str, str]:
    """A Job's own labels: with the Kueue queue label when spec.kubernetes.queue is set. Only on Jobs,
    never on their pods: Kueue's pod integration would gate labelled pods too."""
    queue = manifest.spec.kubernetes.queue
    return dict(labels) if queue is None else {**labels, QUEUE_LABEL: queue}


def _job_spec(labels: Mapping[str, str], pod: dict[str, Any], checked: Checked) -> dict[str, Any]:
    """A Job's spec, for a run's Job and a CronJob's jobTemplate alike."""
    manifest = checked.manifest
    spec = manifest.spec
    job_spec: dict[str, Any] = {
        # Kueue admits a queued Job by unsuspending it. Its webhook suspends labelled Jobs anyway;
        # creating them suspended means a Job never starts before admission, even where the
        # webhook did not run. Without Kueue such a Job waits, visibly suspended.
        "suspend": spec.kubernetes.queue is not None,
        "completions": spec.workers,
        "parallelism": spec.workers,
        "backoffLimit": spec.retries,
    }
    if spec.workers > 1:
        # One pod per worker, each with its index (JOB_COMPLETION_INDEX) and the hostname
        # <job>-<index> its peers resolve through the run's Service (workers.py).
        job_spec["completionMode"] = "Indexed"
    if spec.timeout is not None:
        # The whole run, retries and their backoff included, as spec.timeout means everywhere.
        # Kubernetes restarts this clock when a suspended (queued) Job is resumed.
        job_spec["activeDeadlineSeconds"] = spec.timeout
    job_spec["ttlSecondsAfterFinished"] = checked.target.ttl_seconds
    job_spec["podFailurePolicy"] = pod_failure_policy(spec.workers)
    job_spec["template"] = {
        "metadata": {
            "labels": _sorted(labels),
            "annotations": _sorted(
                {
                    **manifest.metadata.annotations,
                    MANIFEST_SHA256: checked.digest,
                    DEFAULT_CONTAINER: CONTAINER,
                }
            ),
        },
        "spec": pod,
    }
    return job_spec


def _metadata(
    name: str, namespace: str | None, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = _sorted(labels)
    metadata["annotations"] = _sorted(annotations)
    return metadata


def _sorted(mapping: Mapping[str, str]) -> dict[str, str]:
    return {key: mapping[key] for key in sorted(mapping)}
