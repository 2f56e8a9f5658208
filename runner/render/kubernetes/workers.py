"""The parts of a multi-worker run's objects (spec.workers > 1): an Indexed Job whose pods find each other
by name through a headless Service rendered beside it. Pure.

An Indexed Job gives each pod a completion index (JOB_COMPLETION_INDEX, which the agent reads as its
worker index) and the hostname `<job-name>-<index>`; with `subdomain` naming a headless Service that
selects the Job's pods, cluster DNS answers `<job-name>-<index>.<service>` with that pod's address. So
every worker's address is known before any pod exists, and goes into RUNNER_WORKER_ADDRESSES as rendered.
The Service is named after the run, like the Job and the ConfigMap; the backend creates it owned by the
Job, so the garbage collector removes it with the Job (cancel, kubectl delete, TTL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import UserError
from runner.render.kubernetes.conventions import CONTAINER, JOB_NAME_LABEL
from runner.spec import JobManifest
from runner.workers import ADDRESSES, WORKER_PORT, worker_addresses

PORT_NAME = "worker"


def worker_hosts(run_id: str, workers: int) -> list[str]:
    """Each worker's DNS name, by index: the Indexed Job's pod hostname under the run's Service."""
    return [f"{run_id}-{index}.{run_id}" for index in range(workers)]


def addresses_env(run_id: str, workers: int) -> dict[str, Any]:
    """RUNNER_WORKER_ADDRESSES: every worker's host:port, by index, for the agent (runner/workers.py)."""
    return {"name": ADDRESSES, "value": ",".join(worker_addresses(worker_hosts(run_id, workers)))}


def container_port() -> dict[str, Any]:
    """What each worker listens on (documentation to the API, and what network policies can name)."""
    return {"name": PORT_NAME, "containerPort": WORKER_PORT, "protocol": "TCP"}


def worker_service(run_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The headless Service that gives the run's pods their DNS names; metadata as the run's other
    objects have it (named after the run)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(metadata),
        "spec": {
            "clusterIP": "None",  # headless: DNS answers with the pods' own addresses, no proxy between
            # Exactly this run's pods: the job controller puts its Job's name on each of them.
            "selector": {JOB_NAME_LABEL: run_id},
            # A worker resolves the others as they start, before any is Ready (they have no probes and
            # TensorFlow connects while starting up): names exist as soon as pods have addresses.
            "publishNotReadyAddresses": True,
            "ports": [{"name": PORT_NAME, "port": WORKER_PORT, "targetPort": WORKER_PORT, "protocol": "TCP"}],
        },
    }


def all_or_nothing_rule() -> dict[str, Any]:
    """podFailurePolicy's rule that fails a multi-worker Job when any worker's command fails: the Job
    controller then stops the other workers at once, where they would wait on their lost peer until
    activeDeadlineSeconds. It comes after the DisruptionTarget rule (rules are tried in order, the first
    match decides), so a worker evicted or preempted is still not the job's failure."""
    return {
        "action": "FailJob",
        "onExitCodes": {"containerName": CONTAINER, "operator": "NotIn", "values": [0]},
    }


def check_workers(manifest: JobManifest, run_id: str | None) -> None:
    """What a multi-worker run cannot do on a cluster, refused before anything is built or created.

    retries: a batch/v1 Job retries a failed pod alone (a new pod for that index), but the other
    workers of a MultiWorkerMirroredStrategy run have failed or wait on a peer that restarted from
    scratch: a retry must restart every worker together, which is JobSet's failurePolicy, not a Job's.
    Rather than a retry that cannot work, the run is refused: with retries 0, one failed worker fails
    the run (all_or_nothing_rule); the docker and process backends restart every worker on a retry.

    schedules: a schedule's Job is named by the CronJob controller, so its workers' names (and a
    Service for them) cannot be rendered ahead.
    """
    spec = manifest.spec
    if spec.workers == 1:
        return
    if spec.retries > 0:
        raise UserError(
            f"spec.workers: {spec.workers} with spec.retries: {spec.retries}: a Kubernetes Job retries one "
            "failed worker alone, and the others cannot take it back into their training; every worker "
            "must restart together (JobSet's failurePolicy, which runner does not use)",
            hint="set retries: 0 (one failed worker then fails the run), or run it with --backend docker "
            "or process, where a retry restarts every worker",
        )
    if run_id is None:
        raise UserError(
            f"spec.workers: {spec.workers}: a schedule's runs on a cluster run one worker (the CronJob "
            "names each Job, so its workers' addresses cannot be rendered ahead)",
            hint="remove spec.workers from the scheduled manifest, or submit the runs with runner submit",
        )
    if not run_id[0].isalpha():
        raise UserError(
            f"run id {run_id!r}: a multi-worker run's Service is named after it, and a Service's name "
            "starts with a letter",
            hint="name the job with a leading letter (metadata.name)",
        )
