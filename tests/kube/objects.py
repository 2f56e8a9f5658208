"""Small builders for the objects tests send to the fake API server."""

from __future__ import annotations

from typing import Any

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
