"""Small builders for the objects tests send to the fake API server."""

from __future__ import annotations

from typing import Any

from tests.support.apiserver import resources

MANAGED = {"app.kubernetes.io/managed-by": "runner"}
IMAGE = "tensorflow/tensorflow:2.21.0-gpu"


def job_body(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A batch/v1 Job as runner would send it (restartPolicy Never, managed-by label); spec items override."""
    container = {"name": "main", "image": IMAGE, "command": ["python", "train.py"]}
    template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {**MANAGED, **(labels or {})}},
        "spec": {"template": template, **spec},
    }


def cronjob_body(name: str, schedule: str = "0 2 * * *", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": dict(MANAGED)},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": job_body(name)["spec"]}, **spec},
    }


def event_body(
    involved: dict[str, Any],
    name: str,
    reason: str,
    message: str,
    *,
    type: str,
    component: str,
    now: str,
    count: int = 1,
) -> dict[str, Any]:
    """A core/v1 Event named name about involved, as controllers record them and as `kubectl describe`
    and `kubectl get events` read them."""
    meta = involved["metadata"]
    kind = involved.get("kind", "")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {
            "kind": kind,
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "apiVersion": resources.for_object(involved).api_version
            if kind
            else involved.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": count,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": "",
    }
