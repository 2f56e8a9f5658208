"""The labels that tie every runner object (run records, containers, images, Kubernetes objects) to its
job and run, as docs/architecture.md's Kubernetes conventions name them."""

from __future__ import annotations

from collections.abc import Mapping

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "runner"
JOB_LABEL = "runner.dev/job"
RUN_LABEL = "runner.dev/run"


def run_labels(manifest_labels: Mapping[str, str], job: str, run_id: str) -> dict[str, str]:
    """The manifest's labels, then the runner's, which win on a clash."""
    return {**manifest_labels, MANAGED_BY: MANAGER, JOB_LABEL: job, RUN_LABEL: run_id}


SCHEDULE_LABEL = "runner.dev/schedule"
"""The schedule's name, on a schedule's objects (CronJob, its Jobs and pods) and on every run it started."""
