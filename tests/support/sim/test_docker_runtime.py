"""The Docker pod runtime on the real engine: pods from a fake API server run as containers of a small
image pulled from the local registry, report through a recording sink, and leave nothing behind."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.support.apiserver.fixtures import Kube
from tests.support.apiserver.resources import ResourceType
from tests.support.apiserver.store import Obj
from tests.support.engine.base_images import LABEL_TEST_IMAGE, digest
from tests.support.engine.engine import REGISTRY
from tests.support.sim.docker_runtime import LABEL_NODE, LABEL_POD, LABEL_POD_UID, DockerRuntime

pytestmark = pytest.mark.docker

# ENTRYPOINT and CMD of its own, so that command/args semantics show in what a pod prints
POD_IMAGE_DOCKERFILE = """\
FROM {base}
LABEL {label}=sim-docker-runtime
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo from-the-image-cmd"]
"""
END_TIMEOUT_S = 120


@dataclass
class Recording:
    """A PodSink that keeps every call; calls out of the protocol's order are kept as problems (an
    assertion would fail the runtime's thread, not the test) and fail wait_end()."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, call: tuple[Any, ...]) -> None:
        with self.lock:
            names = [c[0] for c in self.calls]
            if self.end is not None:
                self.problems.append(f"{call} after the end {self.end}")
            if call[0] == "started" and names:
                self.problems.append(f"started after {names}")
            if call[0] == "log" and names[:1] != ["started"]:
                self.problems.append("log before started")
            self.calls.append(call)

    def started(self) -> None:
        self._add(("started",))

    def log(self, text: str) -> None:
        self._add(("log", text))

    def exited(self, exit_code: int, *, oom_killed: bool = False) -> None:
        self._add(("exited", exit_code, oom_killed))

    def failed_to_start(self, reason: str, message: str) -> None:
        self._add(("failed_to_start", reason, message))

    @property
    def end(self) -> tuple[Any, ...] | None:
        last = self.calls[-1] if self.calls else None
        return last if last and last[0] in ("exited", "failed_to_start") else None

    @property
    def output(self) -> str:
        with self.lock:
            return "".join(c[1] for c in self.calls if c[0] == "log")

    def wait_end(self, timeout: float = END_TIMEOUT_S) -> tuple[Any, ...]:
        found: tuple[Any, ...] = wait_for(lambda: self.end, timeout, "the pod's end")
        assert not self.problems, self.problems
        return found


@pytest.fixture(scope="session")
def pod_image(docker_client: Any, python_base_image: str) -> str:
    """A small image FROM the python base, in the local registry (built and pushed once per recipe)."""
    dockerfile = POD_IMAGE_DOCKERFILE.format(base=python_base_image, label=LABEL_TEST_IMAGE)
    base_id = docker_client.images.get(python_base_image).id
    repository = f"{REGISTRY}/runner-test/sim-pod"
    tag = digest(dockerfile, base_id)[:16]
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repository}:{tag}", rm=True)
    push(docker_client, repository, tag)
    return f"{repository}:{tag}"


def push(docker_client: Any, repository: str, tag: str) -> None:
    for line in docker_client.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in line, line


@pytest.fixture
def runtime(kube: Kube, docker_client: Any, tmp_path: Path) -> Iterator[DockerRuntime]:
    made = DockerRuntime(kube.server.store, docker_client, root=tmp_path / "runtime")
    yield made
    made.close()


@pytest.fixture
def api(kube: Kube) -> Kube:
    """The fake server, with the Secret and ConfigMap that the pods below read."""
    kube.server.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store-creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": "runner", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
        }
    )
    kube.server.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "manifest"},
            "data": {"job.yaml": "apiVersion: runner/v1\nkind: Job\n"},
        }
    )
    return kube


def make_pod(kube: Kube, image: str, script: str | None = None, **container: Any) -> Obj:
    """A pod created through the fake server (so defaulted and with a uid); script runs under python3."""
    if script is not None:
        container = {"command": ["python3", "-c", script], **container}
    spec = container.pop("pod_spec", {})
    labels = {"app.kubernetes.io/managed-by": "runner", "team": "vision"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{uuid.uuid4().hex[:8]}", "labels": labels, "annotations": {"note": "hi"}},
        "spec": {
            "restartPolicy": "Never",
            "nodeName": "gpu-node-1",
            **spec,
            "containers": [{"name": "job", "image": image, **container}],
        },
    }
    created: Obj = kube.server.create(pod)
    return created


def run_pod(runtime: DockerRuntime, pod: Obj) -> tuple[Recording, tuple[Any, ...]]:
    sink = Recording()
    runtime.start(pod, "gpu-node-1", sink)
    return sink, sink.wait_end()


def runtime_pod_containers(docker_client: Any, uid: str) -> list[Any]:
    found: list[Any] = docker_client.containers.list(all=True, filters={"label": f"{LABEL_POD_UID}={uid}"})
    return found


def test_env_comes_from_the_secret_and_the_downward_api(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    names = ["KEY", "SECRET", "POD", "NS", "UID", "TEAM", "NOTE", "NODE", "SA", "IP", "JOBS", "OPT"]
    pod = make_pod(
        api,
        pod_image,
        f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))",
        env=[
            {
                "name": "KEY",
                "valueFrom": {"secretKeyRef": {"name": "store-creds", "key": "AWS_ACCESS_KEY_ID"}},
            },
            {
                "name": "SECRET",
                "valueFrom": {"secretKeyRef": {"name": "store-creds", "key": "AWS_SECRET_ACCESS_KEY"}},
            },
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "JOBS", "valueFrom": {"configMapKeyRef": {"name": "manifest", "key": "job.yaml"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ],
    )
    sink, end = run_pod(runtime, pod)
    assert end == ("exited", 0, False), sink.output
    meta = pod["metadata"]
    assert json.loads(sink.output) == {
        "KEY": "runner",
        "SECRET": "s3cr3t",
        "POD": meta["name"],
        "NS": api.namespace,
        "UID": meta["uid"],
        "TEAM": "vision",
        "NOTE": "hi",
        "NODE": "gpu-node-1",
        "SA": "default",
        "IP": "127.0.0.1",
        "JOBS": "apiVersion: runner/v1\nkind: Job\n",
        "OPT": None,
    }


RESTRICTED = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "volumes": [
        {"name": "manifest", "configMap": {"name": "manifest"}},
        {"name": "creds", "secret": {"secretName": "store-creds", "defaultMode": 0o400}},
        {"name": "outputs", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ],
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
RESTRICTED_MOUNTS = [
    {"name": "outputs", "mountPath": "/outputs"},
    {"name": "tmp", "mountPath": "/tmp"},
    {"name": "manifest", "mountPath": "/etc/runner", "readOnly": True},
    {"name": "creds", "mountPath": "/etc/creds"},
]

RESTRICTED_SCRIPT = """
import os, json
def attempt(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "ok"
    except OSError as error:
        return error.strerror
lines = open("/proc/self/status").read().splitlines()
status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
mounts = {}
for line in open("/proc/self/mountinfo").read().splitlines():
    fields = line.split()
    mounts[fields[4]] = fields[5].split(",")[0]
print(json.dumps({
    "ids": [os.getuid(), os.getgid()],
    "manifest": open("/etc/runner/job.yaml").read(),
    "secret": open("/etc/creds/AWS_SECRET_ACCESS_KEY").read(),
    "outputs": attempt("/outputs/model.keras"),
    "tmp": attempt("/tmp/scratch"),
    "root_fs": attempt("/opt-written"),
    "mounts": {path: mounts[path] for path in ("/", "/outputs", "/tmp", "/etc/runner", "/etc/creds")},
    "cap_eff": status["CapEff"],
    "no_new_privs": status["NoNewPrivs"],
    "cwd": os.getcwd(),
}))
"""


def test_volumes_under_a_restricted_security_context(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    pod = make_pod(
        api,
        pod_image,
        RESTRICTED_SCRIPT,
        pod_spec=RESTRICTED,
        securityContext=RESTRICTED_CONTAINER,
        volumeMounts=RESTRICTED_MOUNTS,
        workingDir="/outputs",
    )
    sink, end = run_pod(runtime, pod)
    assert end == ("exited", 0, False), sink.output
    seen = json.loads(sink.output)
    assert seen["ids"] == [1000, 1000]
    assert seen["manifest"] == "apiVersion: runner/v1\nkind: Job\n"
    assert seen["secret"] == "s3cr3t"  # 0400 files, readable through the fsGroup
    assert (seen["outputs"], seen["tmp"]) == ("ok", "ok")  # emptyDirs are writable by uid 1000
    assert seen["root_fs"] == "Read-only file system"
    assert seen["mounts"] == {
        "/": "ro",
        "/outputs": "rw",
        "/tmp": "rw",
        "/etc/runner": "ro",
        "/etc/creds": "ro",
    }
    assert int(seen["cap_eff"], 16) == 0
    assert seen["no_new_privs"] == "1"
    assert seen["cwd"] == "/outputs"
    wait_for(lambda: pod["metadata"]["uid"] not in runtime.holding(), 30, "the pod to be let go")
    assert list(runtime.root.iterdir()) == []  # the pod's volume files are gone with it


def test_run_as_non_root_refuses_an_image_that_runs_as_root(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    pod = make_pod(api, pod_image, "print('never')", pod_spec={"securityContext": {"runAsNonRoot": True}})
    _, end = run_pod(runtime, pod)
    assert end[:2] == ("failed_to_start", "CreateContainerConfigError")
    assert end[2].startswith("container has runAsNonRoot and image will run as root")


@pytest.mark.parametrize(
    ("fields", "printed"),
    [
        ({}, "from-the-image-cmd"),
        ({"args": ["echo from-args $(WHO)"]}, "from-args pod"),
        ({"command": ["echo", "from-command"]}, "from-command"),
        ({"command": ["echo"], "args": ["from", "both"]}, "from both"),
    ],
)
def test_command_and_args_replace_entrypoint_and_cmd(
    runtime: DockerRuntime, api: Kube, pod_image: str, fields: dict[str, Any], printed: str
) -> None:
    pod = make_pod(api, pod_image, env=[{"name": "WHO", "value": "pod"}], **fields)
    sink, end = run_pod(runtime, pod)
    assert end == ("exited", 0, False)
    assert sink.output == printed + "\n"


@pytest.mark.parametrize("code", [0, 3, 126])
def test_the_exit_code_is_reported(runtime: DockerRuntime, api: Kube, pod_image: str, code: int) -> None:
    pod = make_pod(api, pod_image, f"import sys; print('bye', file=sys.stderr); sys.exit({code})")
    sink, end = run_pod(runtime, pod)
    assert end == ("exited", code, False)
    assert sink.calls[0] == ("started",)
    assert sink.output == "bye\n"


HANDLES_TERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("terminating", flush=True), sys.exit(143)))
print("ready", flush=True)
while True:
    time.sleep(3600)
"""
IGNORES_TERM = "import time; print('ready', flush=True); time.sleep(3600)"  # PID 1 ignores SIGTERM


@pytest.mark.parametrize(
    "case",
    [(HANDLES_TERM, 143, "terminating\n"), (IGNORES_TERM, 137, "")],
    ids=["handles-sigterm", "ignores-sigterm"],
)
def test_logs_arrive_while_running_and_kill_stops_the_container(
    runtime: DockerRuntime, api: Kube, pod_image: str, case: tuple[str, int, str]
) -> None:
    script, code, after = case
    pod = make_pod(api, pod_image, script)
    uid = pod["metadata"]["uid"]
    sink = Recording()
    runtime.start(pod, "gpu-node-1", sink)
    wait_for(lambda: "ready\n" in sink.output, END_TIMEOUT_S, "the pod's first line")
    assert sink.end is None
    runtime.kill(uid, 1)
    runtime.kill(uid, 1)  # idempotent
    assert sink.wait_end() == ("exited", code, False)
    assert sink.output == "ready\n" + after
    wait_for(lambda: uid not in runtime.holding(), 30, "the pod to be let go")
    runtime.kill(uid, 1)  # after the end: nothing more is reported
    assert sink.calls[-1] == ("exited", code, False)
    assert sum(1 for c in sink.calls if c[0] == "exited") == 1


def test_a_container_over_its_memory_limit_is_oom_killed(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    pod = make_pod(
        api,
        pod_image,
        "print('allocating', flush=True); block = bytearray(512 * 2**20); print('survived')",
        resources={"limits": {"memory": "64Mi", "cpu": "1"}, "requests": {"memory": "64Mi", "cpu": "1"}},
    )
    sink, end = run_pod(runtime, pod)
    assert end == ("exited", 137, True)
    assert sink.output == "allocating\n"


def test_a_missing_image_is_err_image_pull(runtime: DockerRuntime, api: Kube) -> None:
    image = f"{REGISTRY}/runner-test/sim-absent:{uuid.uuid4().hex[:12]}"
    sink, end = run_pod(runtime, make_pod(api, image, "print('never')"))
    assert end[:2] == ("failed_to_start", "ErrImagePull")
    assert end[2].startswith(f'Failed to pull image "{image}": ')
    assert "not found" in end[2]
    assert sink.calls == [end]


def test_a_missing_image_is_never_pulled_when_the_policy_says_so(runtime: DockerRuntime, api: Kube) -> None:
    image = f"{REGISTRY}/runner-test/sim-pod:absent-{uuid.uuid4().hex[:12]}"
    pod = make_pod(api, image, "print('never')", imagePullPolicy="Never")
    _, end = run_pod(runtime, pod)
    assert end == (
        "failed_to_start",
        "ErrImageNeverPull",
        f'Container image "{image}" is not present with pull policy of Never',
    )


def test_a_command_that_cannot_run_is_run_container_error(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    sink, end = run_pod(runtime, make_pod(api, pod_image, command=["/no/such/program"]))
    assert end[:2] == ("failed_to_start", "RunContainerError")
    assert "/no/such/program" in end[2]
    assert sink.calls == [end]
    wait_for(lambda: not runtime.holding(), 30, "the pod to be let go")
    assert runtime.containers() == []


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"name": "nope", "key": "k"}, 'secret "nope" not found'),
        ({"name": "store-creds", "key": "k"}, "couldn't find key k in Secret {ns}/store-creds"),
    ],
)
def test_a_missing_secret_is_create_container_config_error(
    runtime: DockerRuntime,
    api: Kube,
    pod_image: str,
    ref: dict[str, str],
    message: str,
) -> None:
    pod = make_pod(api, pod_image, "print('never')", env=[{"name": "X", "valueFrom": {"secretKeyRef": ref}}])
    sink, end = run_pod(runtime, pod)
    assert end == ("failed_to_start", "CreateContainerConfigError", message.format(ns=api.namespace))
    assert sink.calls == [end]
    assert runtime.containers() == []


def test_an_image_is_pulled_from_the_registry_when_not_here(
    runtime: DockerRuntime, api: Kube, pod_image: str, docker_client: Any
) -> None:
    repository = f"{REGISTRY}/runner-test/sim-pod-pulled"
    tag = uuid.uuid4().hex[:12]
    docker_client.images.get(pod_image).tag(repository, tag)
    push(docker_client, repository, tag)
    docker_client.images.remove(f"{repository}:{tag}")
    try:
        sink, end = run_pod(runtime, make_pod(api, f"{repository}:{tag}", args=["echo pulled"]))
        assert end == ("exited", 0, False)
        assert sink.output == "pulled\n"
        assert f"{repository}:{tag}" in docker_client.images.get(f"{repository}:{tag}").tags
    finally:
        docker_client.images.remove(f"{repository}:{tag}")


class BlockingSource:
    """The store, but reading a Secret waits until the test lets it go: a pod held before its container."""

    def __init__(self, kube: Kube) -> None:
        self.store = kube.server.store
        self.reading = threading.Event()
        self.release = threading.Event()

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        self.reading.set()
        assert self.release.wait(60), "the test never released the source"
        return self.store.find(rt, namespace, name)


def test_a_pod_killed_before_its_container_exists_ends_137_and_never_starts(
    api: Kube, pod_image: str, docker_client: Any, tmp_path: Path
) -> None:
    source = BlockingSource(api)
    runtime = DockerRuntime(source, docker_client, root=tmp_path / "runtime")
    try:
        env = [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "store-creds", "key": "AWS_ACCESS_KEY_ID"}}}
        ]
        pod = make_pod(api, pod_image, "print('never')", env=env)
        uid = pod["metadata"]["uid"]
        sink = Recording()
        runtime.start(pod, "gpu-node-1", sink)
        assert source.reading.wait(END_TIMEOUT_S)
        runtime.kill(uid, 30)
        assert sink.calls == [("exited", 137, False)]
        source.release.set()
        wait_for(lambda: uid not in runtime.holding(), 30, "the pod to be let go")
        assert sink.calls == [("exited", 137, False)]
        assert runtime_pod_containers(docker_client, uid) == []
    finally:
        source.release.set()
        runtime.close()


def test_pods_reach_loopback_services_over_host_networking(
    runtime: DockerRuntime, api: Kube, pod_image: str
) -> None:
    script = f"import urllib.request; print(urllib.request.urlopen('{api.url}/version').status)"
    sink, end = run_pod(runtime, make_pod(api, pod_image, script))
    assert end == ("exited", 0, False), sink.output
    assert sink.output == "200\n"


def test_containers_are_labelled_for_the_simulation_and_close_removes_everything(
    api: Kube, pod_image: str, docker_client: Any, tmp_path: Path
) -> None:
    runtime = DockerRuntime(api.server.store, docker_client, root=tmp_path / "runtime")
    pods = [
        make_pod(
            api,
            pod_image,
            IGNORES_TERM,
            pod_spec=RESTRICTED,
            securityContext=RESTRICTED_CONTAINER,
            volumeMounts=RESTRICTED_MOUNTS,
            resources={"limits": {"cpu": "500m", "memory": "256Mi", "nvidia.com/gpu": 1}},
        )
        for _ in range(2)
    ]
    sinks = [Recording() for _ in pods]
    try:
        for pod, sink in zip(pods, sinks, strict=True):
            runtime.start(pod, "gpu-node-1", sink)
        wait_for(lambda: all("ready\n" in s.output for s in sinks), END_TIMEOUT_S, "the pods' first lines")
        meta = pods[0]["metadata"]
        (container,) = runtime_pod_containers(docker_client, meta["uid"])
        assert container.name == f"k8s_job_{meta['name']}_{api.namespace}_{meta['uid']}_0"
        labels = container.labels
        assert labels[LABEL_POD] == f"{api.namespace}/{meta['name']}"
        assert labels[LABEL_NODE] == "gpu-node-1"
        assert "app.kubernetes.io/managed-by" not in labels  # the runner's leftover guard counts those
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "host"
        assert (host["NanoCpus"], host["Memory"], host["MemorySwap"]) == (500_000_000, 2**28, 2**28)
        assert (host["ReadonlyRootfs"], host["CapDrop"], host["SecurityOpt"]) == (
            True,
            ["ALL"],
            ["no-new-privileges"],
        )
        assert not host.get("DeviceRequests")  # nvidia.com/gpu cannot be given here
        assert len(list(runtime.root.iterdir())) == 2
    finally:
        runtime.close()
    assert [sink.end for sink in sinks] == [("exited", 137, False)] * 2
    assert runtime.containers() == []
    assert all(runtime_pod_containers(docker_client, p["metadata"]["uid"]) == [] for p in pods)
    assert not runtime.root.exists()
    with pytest.raises(RuntimeError, match="closed"):
        runtime.start(pods[0], "gpu-node-1", Recording())
