"""The Kubernetes objects of a run or of a schedule: a ConfigMap holding the resolved manifest, and a
batch/v1 Job (one run) or a batch/v1 CronJob (a schedule, whose Jobs are its runs). Pure.

One path: a ClusterTarget (target.py: image, store, namespace, the store's Secret, input overrides,
grace, TTL; checked when built) and a manifest go through ``render_run`` (a run's ConfigMap and Job)
or ``render_schedule`` (a schedule's ConfigMap and CronJob), which return plain dicts in the order to
apply them; ``runner.render.kubeyaml.to_yaml`` turns them into what ``kubectl apply -f -`` takes.
Nothing here talks to a cluster. The conventions are docs/architecture.md's "Kubernetes conventions";
each decision says why where it is made.

    conventions.py   names, labels, numbers and limits
    checks.py        what cannot run on a cluster (UserError)
    target.py        ClusterTarget, and a manifest checked against one (check)
    pod.py           the pod: container, environment, resources, volumes
    objects.py       the ConfigMap, Job and CronJob around it; labels; owned_by

A schedule's run has no id before the CronJob controller creates its Job, named
``<schedule>-<scheduled unix minutes>``: that name is the run id. So a schedule's objects carry no
runner.dev/run label, and the agent reads RUNNER_RUN_ID from its pod's batch.kubernetes.io/job-name
label (the downward API) instead of a value.

The names below are loaded on first use (runner.lazyexports): what reads only the conventions (the
cluster backend listing Jobs) does not pay for the manifest checks and pydantic's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.lazyexports import lazy_exports

if TYPE_CHECKING:
    from runner.render.kubernetes.checks import input_sources, mount_path
    from runner.render.kubernetes.conventions import (
        AGENT,
        CONTAINER,
        DEFAULT_GRACE,
        FAILED_JOBS_HISTORY,
        JOB_NAME_LABEL,
        MANIFEST_PATH,
        MAX_CRONJOB_NAME,
        SECRET_VARIABLES,
        STORE_SECRET_KEYS,
        SUCCESSFUL_JOBS_HISTORY,
        TTL_SECONDS,
        UID,
        UPLOAD_SECONDS,
        WORKDIR,
    )
    from runner.render.kubernetes.objects import (
        job_labels,
        owned_by,
        pod_failure_policy,
        render_cronjob,
        render_job,
        render_run,
        render_schedule,
        schedule_config_map_name,
        schedule_labels,
    )
    from runner.render.kubernetes.pod import _literal as _literal  # the escaping, for its property test
    from runner.render.kubernetes.pod import run_id_field_path
    from runner.render.kubernetes.target import ClusterTarget

_HOMES = {
    "input_sources": "runner.render.kubernetes.checks",
    "mount_path": "runner.render.kubernetes.checks",
    "AGENT": "runner.render.kubernetes.conventions",
    "CONTAINER": "runner.render.kubernetes.conventions",
    "DEFAULT_GRACE": "runner.render.kubernetes.conventions",
    "FAILED_JOBS_HISTORY": "runner.render.kubernetes.conventions",
    "JOB_NAME_LABEL": "runner.render.kubernetes.conventions",
    "MANIFEST_PATH": "runner.render.kubernetes.conventions",
    "MAX_CRONJOB_NAME": "runner.render.kubernetes.conventions",
    "SECRET_VARIABLES": "runner.render.kubernetes.conventions",
    "STORE_SECRET_KEYS": "runner.render.kubernetes.conventions",
    "SUCCESSFUL_JOBS_HISTORY": "runner.render.kubernetes.conventions",
    "TTL_SECONDS": "runner.render.kubernetes.conventions",
    "UID": "runner.render.kubernetes.conventions",
    "UPLOAD_SECONDS": "runner.render.kubernetes.conventions",
    "WORKDIR": "runner.render.kubernetes.conventions",
    "job_labels": "runner.render.kubernetes.objects",
    "owned_by": "runner.render.kubernetes.objects",
    "pod_failure_policy": "runner.render.kubernetes.objects",
    "render_cronjob": "runner.render.kubernetes.objects",
    "render_job": "runner.render.kubernetes.objects",
    "render_run": "runner.render.kubernetes.objects",
    "render_schedule": "runner.render.kubernetes.objects",
    "schedule_config_map_name": "runner.render.kubernetes.objects",
    "schedule_labels": "runner.render.kubernetes.objects",
    "_literal": "runner.render.kubernetes.pod",
    "run_id_field_path": "runner.render.kubernetes.pod",
    "ClusterTarget": "runner.render.kubernetes.target",
}

__all__ = [
    "AGENT",
    "CONTAINER",
    "DEFAULT_GRACE",
    "FAILED_JOBS_HISTORY",
    "JOB_NAME_LABEL",
    "MANIFEST_PATH",
    "MAX_CRONJOB_NAME",
    "SECRET_VARIABLES",
    "STORE_SECRET_KEYS",
    "SUCCESSFUL_JOBS_HISTORY",
    "TTL_SECONDS",
    "UID",
    "UPLOAD_SECONDS",
    "WORKDIR",
    "ClusterTarget",
    "input_sources",
    "job_labels",
    "mount_path",
    "owned_by",
    "pod_failure_policy",
    "render_cronjob",
    "render_job",
    "render_run",
    "render_schedule",
    "run_id_field_path",
    "schedule_config_map_name",
    "schedule_labels",
]

__getattr__ = lazy_exports(__name__, _HOMES)
