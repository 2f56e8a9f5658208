"""Fixtures for the simulated cluster.

`cluster` -> Cluster: the fake API server with a Simulator running behind it (scale runtime, fake clock,
no nodes yet: tests add what they need), plus everything of tests/kube/fixtures.py's Kube (kubeconfig,
KUBECONFIG set, the real kubectl, a kubernetes client).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.kube.apiserver import FakeKubeServer
from tests.kube.fixtures import Kube, kube
from tests.sim.cluster import Simulator, simulated
from tests.sim.scale import ScaleRuntime

__all__ = ["Cluster", "cluster", "kube"]


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
