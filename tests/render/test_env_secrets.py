"""Secrets on a cluster: spec.env's secretKeyRef becomes the container's valueFrom.secretKeyRef (never
a value, in the Job or in the ConfigMap's manifest); fromEnv and fromFile, which only this machine can
read, are refused with a hint; `runner render --kubernetes` shows the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.errors import UserError
from runner.render import render_job, render_schedule
from runner.render.kubernetes import ClusterTarget
from runner.spec import JobManifest
from tests.conftest import Result

STORE = "s3://bucket/runs"
Runner = Callable[..., Result]


def manifest_of(env: dict[str, Any], **spec: Any) -> JobManifest:
    return JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "secrets"},
            "spec": {"command": ["python", "train.py"], "env": env, **spec},
        }
    )


def container_env(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item for item in container["env"]}


def test_a_secret_key_ref_is_rendered_as_a_reference() -> None:
    manifest = manifest_of(
        {
            "LEVEL": "2",
            "DB_PASSWORD": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
            # a name the cluster refuses as a value is fine as a reference
            "AWS_SECRET_ACCESS_KEY": {"secretKeyRef": {"name": "aws", "key": "secret"}},
        }
    )
    config_map, job = render_job(manifest, run_id="secrets-abc123", image="i", store_url=STORE)
    env = container_env(job)
    assert env["LEVEL"] == {"name": "LEVEL", "value": "2"}
    assert env["DB_PASSWORD"] == {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "aws", "key": "secret"}}
    stored = yaml.safe_load(config_map["data"]["job.yaml"])
    assert stored["spec"]["env"]["DB_PASSWORD"] == {
        "secretKeyRef": {"name": "db-credentials", "key": "password"}
    }


def test_a_schedule_renders_references_the_same() -> None:
    manifest = manifest_of(
        {"DB_PASSWORD": {"secretKeyRef": {"name": "db", "key": "pw"}}}, schedule={"cron": "0 2 * * *"}
    )
    _, cronjob = render_schedule(manifest, ClusterTarget(image="i", store_url=STORE))
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {item["name"]: item for item in pod["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "pw"}}


@pytest.mark.parametrize(
    ("reference", "kind"), [({"fromEnv": "MY_KEY"}, "fromEnv"), ({"fromFile": "/home/me/key"}, "fromFile")]
)
def test_references_to_this_machine_are_refused_on_a_cluster(reference: dict[str, str], kind: str) -> None:
    with pytest.raises(UserError) as caught:
        render_job(manifest_of({"API_KEY": reference}), run_id="secrets-abc123", image="i", store_url=STORE)
    assert caught.value.message == (
        f"spec.env.API_KEY: {kind} is read on this machine when a local attempt starts; a pod on a cluster "
        "cannot read it"
    )
    assert caught.value.hint is not None and "secretKeyRef" in caught.value.hint


def test_a_secret_as_a_value_is_still_refused_with_the_reference_as_the_way_out() -> None:
    with pytest.raises(UserError) as caught:
        render_job(
            manifest_of({"AWS_SECRET_ACCESS_KEY": "abc"}), run_id="secrets-abc123", image="i", store_url=STORE
        )
    assert caught.value.hint is not None and "secretKeyRef" in caught.value.hint


def test_runner_render_kubernetes_shows_references_and_refuses_local_ones(
    runner: Runner, job: Callable[..., Path]
) -> None:
    settings = {"RUNNER_STORE": STORE, "RUNNER_REGISTRY": "127.0.0.1:5000"}
    path = job("cluster", env={"DB_PASSWORD": {"secretKeyRef": {"name": "db", "key": "pw"}}})
    result = runner("render", str(path), "--kubernetes", "--run-id", "cluster-abc123", env=settings)
    assert result.code == 0, result.output
    job_object = list(yaml.safe_load_all(result.stdout))[1]
    assert container_env(job_object)["DB_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "db", "key": "pw"}
    }

    local = job("local", env={"API_KEY": {"fromEnv": "MY_API_KEY"}})
    refused = runner("render", str(local), "--kubernetes", "--run-id", "local-abc123", env=settings)
    assert refused.code == 2, refused.output
    assert "spec.env.API_KEY: fromEnv is read on this machine" in refused.stderr
    assert "Traceback" not in refused.output
