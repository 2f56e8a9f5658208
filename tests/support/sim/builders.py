"""Job and CronJob bodies shaped as runner renders them (restartPolicy Never, GPU limit and toleration,
the podFailurePolicy of runner.render.kubernetes), with the scale runtime's annotations at hand."""

from __future__ import annotations

from typing import Any

from runner.render.kubernetes import pod_failure_policy
from tests.support.apiserver.objects import job_body
from tests.support.sim import scale

Obj = dict[str, Any]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_job(
    name: str,
    *,
    gpus: int = 1,
    product: str | None = None,
    seconds: float | None = None,
    exit_code: int | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    """A Job of one pod asking for gpus GPUs (of product, by nodeSelector), running `seconds` in the
    scale runtime and exiting with exit_code; spec items (backoffLimit, ...) override."""
    body = job_body(name, **{"backoffLimit": 0, "podFailurePolicy": pod_failure_policy(), **spec})
    pod = body["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["name"] = "job"
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        pod["tolerations"] = [dict(GPU_TOLERATION)]
    if product:
        pod["nodeSelector"] = {"nvidia.com/gpu.product": product}
    notes = dict(annotations or {})
    if seconds is not None:
        notes[scale.DURATION] = f"{seconds:g}"
    if exit_code is not None:
        notes[scale.EXIT_CODE] = str(exit_code)
    if notes:
        body["spec"]["template"]["metadata"] = {"annotations": notes}
    return body


def cronjob(name: str, schedule: str, job: Obj | None = None, **spec: Any) -> Obj:
    """A CronJob whose jobTemplate is job (default: a 1-GPU gpu_job running 60s)."""
    template = job or gpu_job(name, seconds=60)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "runner"}},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"runner.dev/schedule": name}, "annotations": {"note": "nightly"}},
                "spec": template["spec"],
            },
            **spec,
        },
    }
