"""A multi-worker run on a cluster (spec.workers > 1): an Indexed Job, a headless Service that names its
pods, every worker's address in each pod, all or nothing on failure. The golden file multiworker.yaml
shows the whole of it; these tests one decision each."""

from __future__ import annotations

from typing import Any

import pytest

from runner.agent.settings import parse_settings
from runner.errors import UserError
from runner.render import kubernetes as k8s
from runner.render import render_job
from runner.spec import JobManifest
from runner.workers import place_from_env, worker_environment
from tests.support.kube_rules import ENDS, object_problems, validate

STORE = "s3://runner-artifacts/store"
RUN = "demo-abc123"


def manifest_of(**spec: Any) -> JobManifest:
    body = {"command": ["python", "train.py"], **spec}
    return JobManifest.model_validate(
        {"apiVersion": "runner/v1", "kind": "Job", "metadata": {"name": "demo"}, "spec": body}
    )


def objects(manifest: JobManifest, **arguments: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {"run_id": RUN, "image": "registry/runner/demo:1", "store_url": STORE}
    values.update(arguments)
    return {obj["kind"]: obj for obj in render_job(manifest, **values)}


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container["env"]}


def test_two_workers_are_an_indexed_job_with_a_headless_service_in_the_order_to_apply() -> None:
    rendered = render_job(manifest_of(workers=2), run_id=RUN, image="i:1", store_url=STORE)
    assert [obj["kind"] for obj in rendered] == ["ConfigMap", "Service", "Job"]
    job = rendered[2]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 2, 2)
    service = rendered[1]
    assert service["metadata"]["name"] == RUN == job["template"]["spec"]["subdomain"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": RUN}  # this run's pods only
    assert [port["port"] for port in service["spec"]["ports"]] == [2222]
    assert service["metadata"]["labels"] == rendered[2]["metadata"]["labels"]


@pytest.mark.parametrize("version", ENDS)
def test_the_service_and_the_indexed_job_are_valid_kubernetes(version: str) -> None:
    for obj in objects(manifest_of(workers=3, resources={"gpu": 1})).values():
        validate(obj, version)
        assert object_problems(obj) == []


def test_each_pod_is_told_every_workers_address_by_its_hostname_under_the_service() -> None:
    job = objects(manifest_of(workers=3))["Job"]
    addresses = f"{RUN}-0.{RUN}:2222,{RUN}-1.{RUN}:2222,{RUN}-2.{RUN}:2222"
    assert env_of(job)["RUNNER_WORKER_ADDRESSES"] == addresses
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "worker", "containerPort": 2222, "protocol": "TCP"}]
    # The agent reads its place from the rendered env and the index Kubernetes gives pod 1.
    env = {key: value for key, value in env_of(job).items() if isinstance(value, str)}
    place = place_from_env({**env, "JOB_COMPLETION_INDEX": "1"})
    assert place is not None and place.index == 1 and place.count == 3
    assert '"index":1' in worker_environment(place)["TF_CONFIG"]
    assert parse_settings({**env, "JOB_COMPLETION_INDEX": "1"}) is not None


def test_one_worker_renders_as_before_no_service_no_index() -> None:
    rendered = render_job(manifest_of(), run_id=RUN, image="i:1", store_url=STORE)
    assert [obj["kind"] for obj in rendered] == ["ConfigMap", "Job"]
    job = rendered[1]["spec"]
    assert "completionMode" not in job and (job["completions"], job["parallelism"]) == (1, 1)
    assert "subdomain" not in job["template"]["spec"]
    assert "RUNNER_WORKER_ADDRESSES" not in env_of(rendered[1])
    assert "ports" not in job["template"]["spec"]["containers"][0]
    assert job["podFailurePolicy"] == k8s.pod_failure_policy()


def test_any_failed_worker_fails_the_job_but_disruptions_are_still_ignored_first() -> None:
    rules = objects(manifest_of(workers=2))["Job"]["spec"]["podFailurePolicy"]["rules"]
    # The first matching rule decides: a disrupted pod (its container killed, non-zero) is ignored.
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["onExitCodes"]["values"] == [126, 127]
    assert rules[2] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "job", "operator": "NotIn", "values": [0]},
    }
    assert len(k8s.pod_failure_policy()["rules"]) == 2


def test_retries_with_several_workers_are_refused_saying_what_to_do() -> None:
    with pytest.raises(UserError, match="retries") as refused:
        objects(manifest_of(workers=2, retries=1))
    assert "retries: 0" in (refused.value.hint or "")
    assert "docker" in (refused.value.hint or "")


def test_a_queued_multi_worker_job_is_created_suspended_whole() -> None:
    job = objects(manifest_of(workers=2, kubernetes={"queue": "team-a"}))["Job"]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (2, 2)


def test_a_schedule_of_several_workers_is_refused() -> None:
    manifest = manifest_of(workers=2, schedule={"cron": "0 2 * * *"})
    with pytest.raises(UserError, match="schedule"):
        k8s.render_cronjob(manifest, image="i:1", store_url=STORE)


def test_a_run_id_that_cannot_name_a_service_is_refused() -> None:
    with pytest.raises(UserError, match="starts with a letter"):
        objects(manifest_of(workers=2), run_id="9lives-abc123")


def test_the_service_goes_in_the_runs_namespace() -> None:
    rendered = objects(manifest_of(workers=2), namespace="ml")
    assert {obj["metadata"]["namespace"] for obj in rendered.values()} == {"ml"}
