"""scripts/cluster.sh itself, on a second control plane of its own (own state directory, own ports) beside
the session's: a component still between fork and exec on a loaded machine is not taken for dead, and a
cluster killed without a stop starts again empty."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends.local.process import free_ports
from tests.support.apiserver.fixtures import kubectl_binary
from tests.support.realcluster import CLUSTER_SH, ControlPlane, wait_until

pytestmark = [pytest.mark.cluster]

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@pytest.fixture
def second_cluster(control_plane: ControlPlane, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment for a cluster.sh of its own (the session's cluster made sure the binaries are
    built); stopped, and its tmpfs unmounted, after the test."""
    api, etcd, peer, manager, scheduler = free_ports(5)
    env = {
        **os.environ,
        "RUNNER_KUBE_STATE": str(tmp_path / "state"),
        "RUNNER_KUBE_API_PORT": str(api),
        "RUNNER_KUBE_ETCD_PORT": str(etcd),
        "RUNNER_KUBE_ETCD_PEER_PORT": str(peer),
        "RUNNER_KUBE_CONTROLLER_MANAGER_PORT": str(manager),
        "RUNNER_KUBE_SCHEDULER_PORT": str(scheduler),
    }
    try:
        yield env
    finally:
        subprocess.run([str(CLUSTER_SH), "stop"], env=env, capture_output=True, check=False)


def cluster_sh(env: dict[str, str], verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SH), verb], env=env, capture_output=True, text=True, timeout=240, check=False
    )


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = Path(env["RUNNER_KUBE_STATE"]) / "admin.kubeconfig"
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_component_slow_to_exec_is_waited_for_not_taken_for_dead(
    second_cluster: dict[str, str], tmp_path: Path
) -> None:
    # Each component is started through setsid; on a loaded machine the child can still be setsid (or
    # bash) when the script first looks at /proc/PID/exe. A setsid that takes half a second to exec makes
    # that moment long for every component.
    shims = tmp_path / "bin"
    shims.mkdir()
    slow_setsid = shims / "setsid"
    slow_setsid.write_text('#!/bin/sh\nsleep 0.5\nexec /usr/bin/setsid "$@"\n')
    slow_setsid.chmod(0o755)
    env = {**second_cluster, "PATH": f"{shims}:{second_cluster['PATH']}"}

    started = cluster_sh(env, "start")

    assert started.returncode == 0, started.stderr
    assert "did not come up" not in started.stderr
    assert cluster_sh(env, "status").returncode == 0


def test_a_cluster_killed_without_a_stop_starts_again_empty(second_cluster: dict[str, str]) -> None:
    assert cluster_sh(second_cluster, "start").returncode == 0
    created = kubectl(second_cluster, "create", "namespace", "left-behind")
    assert created.returncode == 0, created.stderr

    # killed as a session's end kills it: no stop, so the pid files stay and etcd's tmpfs stays mounted
    state = Path(second_cluster["RUNNER_KUBE_STATE"])
    for component in COMPONENTS:
        os.killpg(int((state / f"{component}.pid").read_text()), signal.SIGKILL)
    wait_until(lambda: cluster_sh(second_cluster, "status").returncode != 0, 10, "the API server to go")

    restarted = cluster_sh(second_cluster, "start")

    assert restarted.returncode == 0, restarted.stderr
    found = kubectl(second_cluster, "get", "namespace", "left-behind")
    assert found.returncode != 0
    assert 'namespaces "left-behind" not found' in found.stderr
