"""The Docker pod runtime's reading of a pod (tests/support/sim/docker_podspec.py), without an engine: env and
volumes resolved from a fake API server's store, securityContext and resources as docker options, and
kubelet's words when something is missing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.support.apiserver import resources
from tests.support.apiserver.store import Store
from tests.support.sim import docker_podspec as podspec
from tests.support.sim.docker_podspec import StartFailure

NS = "sim"


@pytest.fixture
def store() -> Store:
    found = Store()
    found.create(resources.lookup("namespaces"), "", {"metadata": {"name": NS}})
    found.create(
        resources.lookup("secrets"),
        NS,
        {"metadata": {"name": "creds"}, "stringData": {"user": "ada", "token": "s3cr3t"}},
    )
    found.create(
        resources.lookup("configmaps"),
        NS,
        {
            "metadata": {"name": "settings"},
            "data": {"mode": "fast", "job.yaml": "kind: Job\n"},
            "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()},
        },
    )
    return found


def a_pod(**container: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": NS,
            "uid": "u-1",
            "labels": {"team": "vision"},
            "annotations": {"note": "hi"},
        },
        "spec": {
            "serviceAccountName": "default",
            "containers": [{"name": "job", "image": "x:1", **container}],
        },
    }


def env_of(store: Store, pod: dict[str, Any]) -> dict[str, str]:
    return podspec.resolve_env(pod, pod["spec"]["containers"][0], store, node="gpu-1", pod_ip="127.0.0.1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-$(B)"),  # undefined names stay as written
        ("$$(A)", "$(A)"),  # $$ escapes
        ("cost $$5", "cost $5"),
        ("$(A", "$(A"),
        ("plain", "plain"),
    ],
)
def test_expansion_follows_kubernetes(text: str, expected: str) -> None:
    assert podspec.expand(text, {"A": "1"}) == expected


def test_env_comes_from_values_secrets_config_maps_and_the_downward_api(store: Store) -> None:
    pod = a_pod(
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        env=[
            {"name": "BASE", "value": "b"},
            {"name": "DERIVED", "value": "$(BASE)/x"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "NOKEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k", "optional": True}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        ],
    )
    env = env_of(store, pod)
    assert env["CFG_mode"] == "fast" and env["CFG_blob"] == "\x00\x01"
    assert env["DERIVED"] == "b/x"
    assert (env["TOKEN"], env["MODE"]) == ("s3cr3t", "fast")
    assert "GONE" not in env and "NOKEY" not in env
    assert (env["TEAM"], env["NOTE"], env["NODE"], env["IP"], env["UID"]) == (
        "vision",
        "hi",
        "gpu-1",
        "127.0.0.1",
        "u-1",
    )


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
        ({"secretKeyRef": {"name": "creds", "key": "k"}}, f"couldn't find key k in Secret {NS}/creds"),
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        (
            {"configMapKeyRef": {"name": "settings", "key": "k"}},
            f"couldn't find key k in ConfigMap {NS}/settings",
        ),
        ({"fieldRef": {"fieldPath": "spec.hostname"}}, "unsupported fieldRef fieldPath 'spec.hostname'"),
    ],
)
def test_a_missing_reference_is_a_config_error_in_kubelets_words(
    store: Store, ref: dict[str, Any], message: str
) -> None:
    with pytest.raises(StartFailure) as raised:
        env_of(store, a_pod(env=[{"name": "X", "valueFrom": ref}]))
    assert (raised.value.reason, raised.value.message) == ("CreateContainerConfigError", message)


def test_resource_field_refs_round_up_by_their_divisor(store: Store) -> None:
    pod = a_pod(
        resources={"limits": {"cpu": "1500m", "memory": "1Gi"}},
        env=[
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
    )
    assert env_of(store, pod) == {"CPU": "2", "MEM": "1024"}


def test_volumes_become_directories_with_keys_as_files(store: Store, tmp_path: Path) -> None:
    pod = a_pod()
    pod["spec"]["securityContext"] = {"fsGroup": 1000}
    pod["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "manifest",
            "configMap": {"name": "settings", "items": [{"key": "job.yaml", "path": "a/j.yaml"}]},
        },
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "maybe", "secret": {"secretName": "nope", "optional": True}},
    ]
    volumes = podspec.write_volumes(pod, store, tmp_path)
    assert volumes["scratch"].path.stat().st_mode & 0o777 == 0o777
    assert not volumes["scratch"].read_only and volumes["manifest"].read_only
    assert (volumes["manifest"].path / "a/j.yaml").read_text() == "kind: Job\n"
    assert sorted(p.name for p in volumes["manifest"].path.rglob("*") if p.is_file()) == ["j.yaml"]
    token = volumes["creds"].path / "token"
    assert token.read_text() == "s3cr3t"
    # 0400 plus group read for the fsGroup, as kubelet's SetVolumeOwnership does (when it may chown)
    assert token.stat().st_mode & 0o777 in (0o400, 0o440)
    if token.stat().st_gid == 1000:
        assert token.stat().st_mode & 0o777 == 0o440
    assert list(volumes["maybe"].path.iterdir()) == []


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            {"configMap": {"name": "nope"}},
            'MountVolume.SetUp failed for volume "v" : configmap "nope" not found',
        ),
        (
            {"secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}},
            'MountVolume.SetUp failed for volume "v" : references non-existent secret key: k',
        ),
        (
            {"persistentVolumeClaim": {"claimName": "c"}},
            'volume "v": persistentVolumeClaim volumes are not simulated',
        ),
    ],
)
def test_a_volume_that_cannot_be_made_is_a_config_error(
    store: Store, tmp_path: Path, volume: dict[str, Any], message: str
) -> None:
    pod = a_pod()
    pod["spec"]["volumes"] = [{"name": "v", **volume}]
    with pytest.raises(StartFailure) as raised:
        podspec.write_volumes(pod, store, tmp_path)
    assert raised.value.message == message


def test_mounts_are_read_only_for_key_volumes_and_sub_paths_are_made(store: Store, tmp_path: Path) -> None:
    pod = a_pod(
        volumeMounts=[
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "scratch", "mountPath": "/outputs", "subPath": "out"},
            {"name": "manifest", "mountPath": "/etc/runner"},
        ]
    )
    pod["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "manifest", "configMap": {"name": "settings"}},
    ]
    volumes = podspec.write_volumes(pod, store, tmp_path)
    binds = podspec.binds(pod["spec"]["containers"][0], volumes)
    assert [(b.target, b.read_only) for b in binds] == [
        ("/tmp", False),
        ("/outputs", False),
        ("/etc/runner", True),
    ]
    assert Path(binds[1].source) == tmp_path / "scratch" / "out" and Path(binds[1].source).is_dir()


def test_security_context_and_resources_become_docker_options() -> None:
    pod = a_pod(
        command=["python", "-m", "runner.agent", "--"],
        args=["python", "train.py", "--out", "$(OUT)"],
        workingDir="/job",
        securityContext={
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
        resources={"limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}},
    )
    pod["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000}
    config = podspec.container_config(pod, pod["spec"]["containers"][0], {"OUT": "/outputs"})
    kwargs = config.docker_kwargs()
    assert kwargs["entrypoint"] == ["python", "-m", "runner.agent", "--"]
    assert kwargs["command"] == ["python", "train.py", "--out", "/outputs"]
    assert (kwargs["working_dir"], kwargs["user"], kwargs["group_add"]) == ("/job", "1000:1000", ["2000"])
    assert (kwargs["read_only"], kwargs["cap_drop"], kwargs["security_opt"]) == (
        True,
        ["ALL"],
        ["no-new-privileges"],
    )
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 4 * 2**30
    assert (kwargs["nano_cpus"], kwargs["cpu_shares"]) == (2_000_000_000, 512)
    assert not any("gpu" in key or "device" in key for key in kwargs)


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd"),
    [
        (None, None, None, None),  # the image's ENTRYPOINT and CMD
        (None, ["x"], None, ["x"]),  # the image's ENTRYPOINT, args for CMD
        (["c"], None, ["c"], None),  # command drops the image's CMD
        (["c"], ["x"], ["c"], ["x"]),
    ],
)
def test_command_and_args_map_to_entrypoint_and_cmd(
    command: list[str] | None, args: list[str] | None, entrypoint: list[str] | None, cmd: list[str] | None
) -> None:
    fields = {k: v for k, v in (("command", command), ("args", args)) if v is not None}
    config = podspec.container_config(a_pod(**fields), a_pod(**fields)["spec"]["containers"][0], {})
    assert (config.entrypoint, config.command) == (entrypoint, cmd)


@pytest.mark.parametrize(
    ("pod_context", "image_user", "message"),
    [
        ({"runAsNonRoot": True}, "", "container has runAsNonRoot and image will run as root"),
        ({"runAsNonRoot": True}, "0:0", "container has runAsNonRoot and image will run as root"),
        ({"runAsNonRoot": True}, "app", "container has runAsNonRoot and image has non-numeric user (app)"),
        ({"runAsNonRoot": True, "runAsUser": 0}, "1000", "container's runAsUser breaks non-root policy"),
        ({"runAsNonRoot": True, "runAsUser": 1000}, "", None),
        ({"runAsNonRoot": True}, "1000:1000", None),
        ({}, "", None),
    ],
)
def test_run_as_non_root_is_checked_like_kubelet(
    pod_context: dict[str, Any], image_user: str, message: str | None
) -> None:
    pod = a_pod()
    pod["spec"]["securityContext"] = pod_context
    container = pod["spec"]["containers"][0]
    if message is None:
        podspec.check_non_root(pod, container, image_user)
        return
    with pytest.raises(StartFailure) as raised:
        podspec.check_non_root(pod, container, image_user)
    assert raised.value.message.startswith(message)
    assert raised.value.message.endswith('(pod: "p_sim(u-1)", container: job)')


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [
        ("127.0.0.1:5000/a/b:1", None, "IfNotPresent"),
        ("127.0.0.1:5000/a/b", None, "Always"),
        ("b:latest", None, "Always"),
        ("b@sha256:" + "0" * 64, None, "IfNotPresent"),
        ("b", "Never", "Never"),
    ],
)
def test_pull_policy_defaults_like_kubernetes(image: str, policy: str | None, expected: str) -> None:
    container = {"name": "job", "image": image, **({"imagePullPolicy": policy} if policy else {})}
    assert podspec.pull_policy(container) == expected


def test_a_pod_of_two_containers_is_refused() -> None:
    pod = a_pod()
    pod["spec"]["containers"].append({"name": "side", "image": "x:1"})
    with pytest.raises(StartFailure, match="exactly one container"):
        podspec.only_container(pod)


def test_container_names_follow_kubelet() -> None:
    pod = a_pod()
    assert podspec.container_name(pod, pod["spec"]["containers"][0]) == "k8s_job_p_sim_u-1_0"
