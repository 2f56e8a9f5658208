"""Fixtures for the simulated cluster.

`cluster` -> Cluster: the fake API server with a Simulator running behind it (scale runtime, fake clock,
no nodes yet: tests add what they need), plus everything of apiserver/fixtures.py's Kube (kubeconfig,
KUBECONFIG set, the real kubectl, a kubernetes client).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.apiserver.apiserver import FakeKubeServer
from tests.support.apiserver.fixtures import Kube, kube
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3
from tests.support.sim.cluster import Simulator, simulated
from tests.support.sim.scale import ScaleRuntime

__all__ = [
    "REGISTRY",
    "SECRET",
    "Cluster",
    "aws_env",
    "bucket",
    "cluster",
    "kube",
    "moto_endpoint",
    "s3",
    "store_secret",
]


@dataclass
class Cluster:
    kube: Kube
    sim: Simulator
    runtime: ScaleRuntime

    @property
    def server(self) -> FakeKubeServer:
        return self.kube.server

    @property
    def namespace(self) -> str:
        return self.kube.namespace


@pytest.fixture
def cluster(kube: Kube) -> Iterator[Cluster]:
    with simulated(kube.server) as sim:
        assert isinstance(sim.runtime, ScaleRuntime)
        yield Cluster(kube, sim, sim.runtime)


SECRET = "runner-store"
REGISTRY = "127.0.0.1:5000"


@pytest.fixture
def store_secret(kube: Kube, bucket: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The cluster side of the s3:// store (moto's server): a Secret with its credentials, named by
    RUNNER_STORE_SECRET, and the settings a cluster run needs. Returns the bucket."""
    kube.server.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "stringData": {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": aws_env,
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        },
        kube.namespace,
    )
    monkeypatch.setenv("RUNNER_STORE", f"s3://{bucket}/runs")
    monkeypatch.setenv("RUNNER_STORE_SECRET", SECRET)
    monkeypatch.setenv("RUNNER_REGISTRY", REGISTRY)
    return bucket
