"""The Kubernetes rendering of a schedule: a ConfigMap and a CronJob whose Jobs are ordinary runs.

The golden file (nightly.yaml) and its schema checks live with the others in test_kubernetes.py.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest

from runner.agent.settings import parse_settings
from runner.errors import UserError
from runner.render import kubernetes as k8s
from runner.render import render_job, resolved_yaml
from runner.spec import JobManifest
from runner.spec.model import MAX_NAME_LENGTH, RUN_SUFFIX_LENGTH
from tests.support.kube_rules import ENDS, object_problems, restricted_problems, validate

STORE = "s3://runner-artifacts/store"
IMAGE = "registry/runner/demo:1"
SCHEDULE_LABELS = {
    "app.kubernetes.io/managed-by": "runner",
    "app.kubernetes.io/name": "runner-job",
    "runner.dev/job": "demo",
    "runner.dev/schedule": "demo",
}


def manifest_of(name: str = "demo", labels: dict[str, str] | None = None, **spec: Any) -> JobManifest:
    body = {"command": ["echo", "hi"], "schedule": {"cron": "0 2 * * *"}, **spec}
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    return JobManifest.model_validate(
        {"apiVersion": "runner/v1", "kind": "Job", "metadata": metadata, "spec": body}
    )


def render(manifest: JobManifest | None = None, **arguments: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {"image": IMAGE, "store_url": STORE, **arguments}
    config_map, cronjob = k8s.render_cronjob(manifest or manifest_of(), **values)
    return config_map, cronjob


def job_template(cronjob: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = cronjob["spec"]["jobTemplate"]
    return template


def pod_template(cronjob: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = job_template(cronjob)["spec"]["template"]
    return template


def env_entries(cronjob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in pod_template(cronjob)["spec"]["containers"][0]["env"]}


def downward_env(entries: dict[str, dict[str, Any]], pod_labels: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet gives a container: values, and fieldRefs to the pod's labels."""
    env = {}
    for name, entry in entries.items():
        if "value" in entry:
            env[name] = entry["value"]
        elif "fieldRef" in entry.get("valueFrom", {}):
            path = entry["valueFrom"]["fieldRef"]["fieldPath"]
            match = re.fullmatch(r"metadata\.labels\['(?P<key>[^']+)'\]", path)
            assert match is not None, path
            env[name] = pod_labels.get(match["key"], "")
    return env


# ------------------------------------------------------------------------------------- objects


def test_a_config_map_then_a_cronjob_named_after_the_job() -> None:
    config_map, cronjob = render()
    assert (config_map["kind"], cronjob["apiVersion"], cronjob["kind"]) == (
        "ConfigMap",
        "batch/v1",
        "CronJob",
    )
    assert cronjob["metadata"]["name"] == "demo"


def test_the_config_map_is_named_by_the_manifest_digest_and_mounted_by_every_run() -> None:
    text = "the resolved manifest\n"
    config_map, cronjob = render(manifest_text=text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert config_map["metadata"]["name"] == f"demo-{digest[:10]}"
    assert config_map["data"] == {"job.yaml": text}
    assert config_map["immutable"] is True
    volumes = pod_template(cronjob)["spec"]["volumes"]
    assert {"name": "manifest", "configMap": {"name": config_map["metadata"]["name"]}} in volumes
    # another manifest, another ConfigMap: runs of the old template keep reading theirs
    assert render(manifest_text="changed\n")[0]["metadata"]["name"] != config_map["metadata"]["name"]


def test_the_config_map_name_can_never_be_a_run_id() -> None:
    # A run's ConfigMap is named by its run id, <job>-<6 characters>; the schedule's ends in 10.
    config_map, _ = render(manifest_of("demo-abcd"))
    name = config_map["metadata"]["name"]
    assert len(name.rsplit("-", 1)[1]) == 10 != RUN_SUFFIX_LENGTH


def test_schedule_fields_and_defaults() -> None:
    spec = render()[1]["spec"]
    assert spec["schedule"] == "0 2 * * *"
    assert spec["timeZone"] == "UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is False
    assert spec["startingDeadlineSeconds"] == 3600  # a late run is started, not silently dropped
    assert spec["successfulJobsHistoryLimit"] == k8s.SUCCESSFUL_JOBS_HISTORY == 3
    assert spec["failedJobsHistoryLimit"] == k8s.FAILED_JOBS_HISTORY == 3


def test_schedule_fields_from_the_manifest() -> None:
    schedule = {
        "cron": "@hourly",
        "timeZone": "Asia/Seoul",
        "concurrency": "Replace",
        "suspend": True,
        "startingDeadline": "10m",
    }
    spec = render(manifest_of(schedule=schedule))[1]["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "@hourly",
        "Asia/Seoul",
        "Replace",
    )
    assert spec["suspend"] is True
    assert spec["startingDeadlineSeconds"] == 600


def test_labels_everywhere_with_the_schedule_and_never_a_run() -> None:
    manifest = manifest_of(labels={"team": "vision", "runner.dev/run": "spoofed", "runner.dev/schedule": "x"})
    config_map, cronjob = render(manifest)
    expected = {**SCHEDULE_LABELS, "team": "vision"}
    for metadata in (
        config_map["metadata"],
        cronjob["metadata"],
        job_template(cronjob)["metadata"],
        pod_template(cronjob)["metadata"],
    ):
        assert metadata["labels"] == expected
        assert list(metadata["labels"]) == sorted(expected)


def test_the_manifest_hash_is_annotated_on_the_cronjob_its_jobs_and_pods() -> None:
    text = "as stored\n"
    _, cronjob = render(manifest_text=text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    for metadata in (
        cronjob["metadata"],
        job_template(cronjob)["metadata"],
        pod_template(cronjob)["metadata"],
    ):
        assert metadata["annotations"]["runner.dev/manifest-sha256"] == digest


def test_a_queue_labels_the_jobs_only_and_they_start_suspended() -> None:
    config_map, cronjob = render(manifest_of(kubernetes={"queue": "team-a"}))
    assert job_template(cronjob)["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    for metadata in (config_map["metadata"], cronjob["metadata"], pod_template(cronjob)["metadata"]):
        assert "kueue.x-k8s.io/queue-name" not in metadata["labels"]
    assert job_template(cronjob)["spec"]["suspend"] is True
    assert cronjob["spec"]["suspend"] is False  # the schedule itself runs


def test_each_run_is_an_ordinary_run_whose_id_is_its_jobs_name() -> None:
    manifest = manifest_of(retries=2, timeout="1h", resources={"gpu": 1})
    _, cronjob = render(manifest)
    _, job = render_job(manifest, run_id="demo-k3x9q2", image=IMAGE, store_url=STORE)
    scheduled, single = copy.deepcopy(job_template(cronjob)["spec"]), copy.deepcopy(job["spec"])
    for spec in (scheduled, single):
        pod = spec["template"]
        del pod["metadata"]["labels"]  # the run label, or the schedule label
        del next(v for v in pod["spec"]["volumes"] if v["name"] == "manifest")["configMap"]
        env = pod["spec"]["containers"][0]["env"]
        env[:] = [entry for entry in env if entry["name"] != "RUNNER_RUN_ID"]
    assert scheduled == single


def test_the_agent_reads_the_run_id_from_the_job_controllers_label() -> None:
    _, cronjob = render()
    entry = env_entries(cronjob)["RUNNER_RUN_ID"]
    assert entry == {
        "name": "RUNNER_RUN_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
    }
    # What the CronJob controller and the job controller make of it: pod labelled with its Job's name.
    pod_labels = {
        **pod_template(cronjob)["metadata"]["labels"],
        "batch.kubernetes.io/job-name": "demo-29456400",
    }
    settings = parse_settings(downward_env(env_entries(cronjob), pod_labels))
    assert settings.run_id == "demo-29456400"
    assert settings.job == "demo"
    assert settings.store_url == STORE
    assert str(settings.manifest) == "/etc/runner/job.yaml"


@pytest.mark.parametrize("render_one", ["job", "cronjob"])
def test_retention_reaches_the_agent_of_runs_and_schedules(render_one: str) -> None:
    def variables(manifest: JobManifest) -> dict[str, Any]:
        if render_one == "job":
            obj = render_job(manifest, run_id="demo-abc123", image=IMAGE, store_url=STORE)[1]
            return {
                e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]
            }
        return {name: entry.get("value") for name, entry in env_entries(render(manifest)[1]).items()}

    assert variables(manifest_of(retention={"keepLast": 5}))["RUNNER_RETENTION"] == "keepLast=5"
    both = variables(manifest_of(retention={"keepLast": 5, "keepDays": 30}))
    assert both["RUNNER_RETENTION"] == "keepLast=5,keepDays=30"
    assert "RUNNER_RETENTION" not in variables(manifest_of())


def test_restricted_pod_security_for_scheduled_runs() -> None:
    assert restricted_problems(pod_template(render(manifest_of(resources={"gpu": 2}))[1])["spec"]) == []


@pytest.mark.parametrize("version", ENDS)
@pytest.mark.parametrize(
    "spec",
    [
        {},
        {
            "schedule": {
                "cron": "*/5 * * * *",
                "timeZone": "Europe/Berlin",
                "concurrency": "Allow",
                "suspend": True,
            }
        },
        {"kubernetes": {"queue": "q", "namespace": "ml", "serviceAccount": "runner-jobs"}, "timeout": "30m"},
        {"inputs": [{"name": "a", "source": "s3://b/a", "path": "/data/a"}], "retention": {"keepDays": 3}},
    ],
)
def test_rendered_schedules_are_valid_kubernetes(spec: dict[str, Any], version: str) -> None:
    for obj in render(manifest_of(**spec), store_secret="runner-store"):
        validate(obj, version)
        assert object_problems(obj) == []


# ------------------------------------------------------------------------------------ refusals


def test_the_longest_job_name_fits_a_cronjob_and_its_jobs() -> None:
    assert MAX_NAME_LENGTH == k8s.MAX_CRONJOB_NAME == 52
    name = "n" * MAX_NAME_LENGTH
    config_map, cronjob = render(manifest_of(name))
    assert cronjob["metadata"]["name"] == name
    assert len(config_map["metadata"]["name"]) == 63
    assert len(f"{name}-{2**32 // 60}") <= 63  # what the CronJob controller names its Jobs


def test_a_name_too_long_for_a_cronjob_is_refused() -> None:
    # Validation stops such names; a manifest built around it is refused, not sent.
    valid = manifest_of()
    too_long = valid.model_copy(update={"metadata": valid.metadata.model_copy(update={"name": "n" * 53})})
    with pytest.raises(UserError, match="52 characters") as caught:
        render(too_long)
    assert "metadata.name" in (caught.value.hint or "")


def test_a_manifest_without_a_schedule_is_refused_with_a_hint() -> None:
    manifest = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo"},
            "spec": {"command": ["true"]},
        }
    )
    with pytest.raises(UserError, match="no schedule") as caught:
        render(manifest)
    assert "spec.schedule" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("argument", "value", "match"),
    [("store_url", "file:///x", "store"), ("image", "", "image"), ("namespace", "ML", "namespace")],
)
def test_what_a_run_refuses_a_schedule_refuses(argument: str, value: Any, match: str) -> None:
    with pytest.raises(UserError, match=match):
        render(**{argument: value})


def test_rendering_a_schedule_is_pure() -> None:
    manifest = manifest_of(labels={"team": "a"})
    before = manifest.model_dump()
    first = render(manifest, manifest_text=resolved_yaml(manifest))
    expected = copy.deepcopy(first)
    first[1]["metadata"]["labels"]["team"] = "changed"
    pod_template(first[1])["spec"]["containers"][0]["args"].append("changed")
    assert render(manifest, manifest_text=resolved_yaml(manifest)) == expected
    assert manifest.model_dump() == before
