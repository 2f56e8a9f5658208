"""Pod Security on a real API server: in a namespace that enforces the restricted level, every pod runner
renders (a submitted run's, a schedule's) is admitted, and runs, on the node agent's containers. The
admission plugin is live: a pod that breaks the level is refused in the same namespace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import status_of, submitted_run
from tests.realcluster.helpers import Runner, condition, job_finished, small_job, wait_for_run
from tests.support.nodeagent import NodeAgent
from tests.support.realcluster import RESTRICTED, RealKube

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.usefixtures("home", "real_store")]


def test_the_namespace_enforces_restricted_and_refuses_a_pod_that_breaks_it(real_kube: RealKube) -> None:
    namespace = real_kube.get(real_kube.core.read_namespace, real_kube.namespace)
    assert namespace is not None and RESTRICTED.items() <= namespace["metadata"]["labels"].items()
    rooted = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rooted"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = real_kube.kubectl("create", "-f", "-", input=json.dumps(rooted))
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert "privileged" in refused.stderr


def test_a_submitted_run_is_admitted_under_restricted_and_runs(
    runner: Runner,
    job: Callable[..., Path],
    python_base_image: str,
    real_kube: RealKube,
    gpu_nodes: NodeAgent,
) -> None:
    path = small_job(job, python_base_image, "admitted", "id -u; echo hello from the pod")

    # what runner renders passes the server's own Pod Security check without a warning
    rendered = runner("render", str(path), "--kubernetes")
    assert rendered.code == 0, rendered.output
    dry = real_kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered.stdout)
    assert dry.returncode == 0, dry.stderr
    assert "PodSecurity" not in dry.stderr, dry.stderr

    result = runner("submit", "--backend", "kubernetes", str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    assert "hello from the pod" in result.stdout
    run = submitted_run(result)
    (pod,) = real_kube.pods_of(run)
    assert pod["spec"]["nodeName"] in gpu_nodes.specs
    assert pod["status"]["phase"] == "Succeeded"
    uid = str(pod["spec"]["securityContext"]["runAsUser"])
    assert f"] {uid}\n" in result.stdout  # the container ran as the pod's non-root user
    assert status_of(run)["state"] == "succeeded"


def test_a_schedule_is_admitted_under_restricted_and_its_triggered_run_runs(
    runner: Runner,
    job: Callable[..., Path],
    python_base_image: str,
    real_kube: RealKube,
    gpu_nodes: NodeAgent,
) -> None:
    path = small_job(
        job,
        python_base_image,
        "nightly",
        "echo scheduled run $RUNNER_RUN_ID",
        schedule={"cron": "0 2 * * *", "concurrency": "Forbid"},
    )
    dry = runner("schedule", "apply", str(path), "--backend", "kubernetes", "--dry-run")
    assert dry.code == 0, dry.output
    checked = real_kube.kubectl("apply", "--dry-run=server", "-f", "-", input=dry.stdout)
    assert checked.returncode == 0, checked.stderr
    assert "PodSecurity" not in checked.stderr, checked.stderr  # the CronJob's pod template is checked too

    applied = runner("schedule", "apply", str(path), "--backend", "kubernetes")
    assert applied.code == 0, applied.output
    cronjob = real_kube.get(real_kube.batch.read_namespaced_cron_job, "nightly", real_kube.namespace)
    assert cronjob is not None and cronjob["spec"]["concurrencyPolicy"] == "Forbid"

    triggered = runner("schedule", "trigger", "nightly", "--cluster")
    assert triggered.code == 0, triggered.output
    run = triggered.stdout.strip().split()[-1]
    job_object = job_finished(real_kube, run)
    assert condition(job_object, "Complete"), job_object["status"]
    (owner,) = job_object["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("CronJob", "nightly")
    (pod,) = real_kube.pods_of(run)
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] in gpu_nodes.specs
    assert wait_for_run(run, "succeeded")["state"] == "succeeded"
    logs = runner("logs", run)
    assert logs.code == 0, logs.output
    assert f"scheduled run {run}" in logs.stdout
