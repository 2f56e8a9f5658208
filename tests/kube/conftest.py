"""The `kube` fixture for the tests of the fake API server itself (other suites load tests.kube.fixtures)."""

from tests.kube.fixtures import kube

__all__ = ["kube"]
