"""pytest plugin: a real Kubernetes control plane (scripts/cluster.sh) with GPU nodes from the node agent
(tests/support/nodeagent). Load it with `pytest_plugins = ["tests.support.realcluster"]`.

Session fixture:
    control_plane    ControlPlane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
                     loopback. Started with `scripts/cluster.sh start` (which builds them the first time on
                     a machine: about 6 minutes on 2 cores) unless one already answers; one this session
                     started is stopped at its end. When it cannot start, the tests that use it are skipped
                     with the reason, or fail when env CI is true.
Module fixture:
    gpu_nodes        NodeAgent: two nodes of 8 NVIDIA-H100-80GB-HBM3 GPUs each (named h100-<id>-1 and -2)
                     whose pods run as Docker containers; more with gpu_nodes.add_node(NodeSpec(...)).
Function fixtures:
    real_kube        RealKube: a fresh namespace (labelled for the restricted Pod Security level: enforce,
                     warn and audit), a kubeconfig whose context is it (KUBECONFIG points to it, for runner
                     and kubectl), the real kubectl, the official client's APIs; the namespace is deleted
                     after the test, and waited for, while the nodes still run its pods' deletion.
    real_store       the s3:// store (moto's server) for cluster runs: its credentials in a Secret of the
                     namespace, RUNNER_STORE, RUNNER_STORE_SECRET and RUNNER_REGISTRY set. Returns the bucket.

It also registers the `cluster` marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from tests.support.apiserver.fixtures import kubectl_binary
from tests.support.engine.engine import in_ci
from tests.support.nodeagent import NodeAgent, NodeSpec

if TYPE_CHECKING:
    import docker
    from kubernetes.client import ApiClient

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "scripts" / "cluster.sh"
SECRET = "runner-store"
REGISTRY = "127.0.0.1:5000"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
NAMESPACE_GONE_S = 120.0


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI is set: cluster tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str, pause: float = 0.2) -> T:
    """Poll until predicate returns something truthy, for at most timeout seconds."""
    give_up = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(pause)


@dataclass(frozen=True)
class ControlPlane:
    state: Path
    url: str

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """The official client on a kubeconfig (default: the admin's), with room for a few streams."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.admin_kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = 16
        return client.ApiClient(configuration)


def _cluster_env() -> dict[str, str]:
    done = subprocess.run([str(CLUSTER_SH), "env"], capture_output=True, text=True, check=True)
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value
    return found


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    if not CLUSTER_SH.exists():
        unavailable(f"no {CLUSTER_SH}")
    started = False
    if subprocess.run([str(CLUSTER_SH), "status"], capture_output=True, check=False).returncode != 0:
        if os.geteuid() != 0:
            unavailable("scripts/cluster.sh start needs root (etcd's tmpfs)")
        capture: Any = request.config.pluginmanager.getplugin("capturemanager")
        # a first start builds for minutes: let its progress reach the terminal
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            done = subprocess.run(
                [str(CLUSTER_SH), "start"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            unavailable(f"scripts/cluster.sh start failed: {done.stdout[-3000:]}")
        started = True
    env = _cluster_env()
    try:
        yield ControlPlane(Path(env["RUNNER_KUBE_STATE"]), env["RUNNER_KUBE_API"])
    finally:
        if started:
            subprocess.run([str(CLUSTER_SH), "stop"], capture_output=True, check=False)


H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def gpu_nodes(control_plane: ControlPlane, docker_client: docker.DockerClient) -> Iterator[NodeAgent]:
    agent = NodeAgent.docker(control_plane.api_client(), docker_client, control_plane.pki)
    prefix = f"h100-{agent.id[:6]}-"
    agent.start([NodeSpec(f"{prefix}{index}", gpus=8, product=H100) for index in (1, 2)])
    try:
        yield agent
    finally:
        agent.close()


@dataclass
class RealKube:
    plane: ControlPlane
    namespace: str
    kubeconfig: Path
    cache_dir: Path
    api: ApiClient

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
            "HOME": str(self.cache_dir.parent),
        }

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl on this namespace; never raises on a non-zero exit."""
        return subprocess.run(
            [str(kubectl_binary()), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )

    def get(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A read as raw JSON; None on 404."""
        from kubernetes.client.exceptions import ApiException

        try:
            response = call(*args, _preload_content=False, _request_timeout=(5, 30), **kwargs)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(response.data)
        return found

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        listing = self.get(self.core.list_namespaced_pod, self.namespace, label_selector=selector)
        return list((listing or {}).get("items") or [])

    def job(self, name: str) -> dict[str, Any] | None:
        return self.get(self.batch.read_namespaced_job, name, self.namespace)

    def events(self, **selector: str) -> list[dict[str, Any]]:
        fields = ",".join(f"{key}={value}" for key, value in selector.items())
        listing = self.get(self.core.list_namespaced_event, self.namespace, field_selector=fields)
        return list((listing or {}).get("items") or [])

    def pods_of(self, run: str) -> list[dict[str, Any]]:
        """The pods of a run's Job (submitted or a schedule's: the Job's name is the run id)."""
        return self.pods(f"batch.kubernetes.io/job-name={run}")


def write_kubeconfig(plane: ControlPlane, path: Path, namespace: str) -> Path:
    admin = yaml.safe_load(plane.admin_kubeconfig.read_text())
    for context in admin["contexts"]:
        context["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(admin, sort_keys=False))
    path.chmod(0o600)
    return path


@pytest.fixture
def real_kube(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RealKube]:
    from kubernetes import client

    api = control_plane.api_client()
    core = client.CoreV1Api(api)
    namespace = f"rt-{uuid.uuid4().hex[:10]}"
    # a dict body: the client sends it as it is, though its annotations ask for a V1Namespace
    namespace_body: Any = {"metadata": {"name": namespace, "labels": RESTRICTED}}
    core.create_namespace(namespace_body)
    directory = tmp_path / "kube"
    directory.mkdir()
    kubeconfig = write_kubeconfig(control_plane, directory / "config", namespace)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube = RealKube(control_plane, namespace, kubeconfig, directory / "cache", api)
    try:
        # pods are refused until the service account controller has made the namespace's "default"
        wait_until(
            lambda: kube.get(core.read_namespaced_service_account, "default", namespace), 60, "the default SA"
        )
        yield kube
    finally:
        # What ran here goes first, Jobs and CronJobs with their pods, whose deletion the nodes finish
        # while they still run; then the namespace, which its controller removes a few seconds later.
        batch = client.BatchV1Api(api)
        for delete in (batch.delete_collection_namespaced_cron_job, batch.delete_collection_namespaced_job):
            delete(namespace, propagation_policy="Background", _preload_content=False)
        core.delete_collection_namespaced_pod(namespace, _preload_content=False)
        wait_until(
            lambda: not kube.pods(), NAMESPACE_GONE_S, f"the pods of namespace {namespace} to go", pause=0.2
        )
        core.delete_namespace(namespace, _preload_content=False)
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def real_store(real_kube: RealKube, bucket: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    real_kube.core.create_namespaced_secret(
        real_kube.namespace,
        {
            "metadata": {"name": SECRET},
            "stringData": {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": aws_env,
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        },
    )
    monkeypatch.setenv("RUNNER_STORE", f"s3://{bucket}/runs")
    monkeypatch.setenv("RUNNER_STORE_SECRET", SECRET)
    monkeypatch.setenv("RUNNER_REGISTRY", REGISTRY)
    return bucket
