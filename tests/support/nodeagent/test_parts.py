"""The node agent's pure parts: the container log store and its kubelet options, the Node it registers,
and the projected volume a pod's service account token comes in (docker_podspec.projected_files)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.render.gpus import GPU_PRODUCT_LABEL, gpu_products
from tests.support.nodeagent.logs import ContainerLog, LogOptions, rfc3339_nano
from tests.support.nodeagent.nodes import GPU_RESOURCE, NodeSpec, node_object
from tests.support.sim import docker_podspec as podspec
from tests.support.sim.docker_podspec import StartFailure


def read(log: ContainerLog, **options: Any) -> bytes:
    return b"".join(log.read(LogOptions(**options)))


def test_the_log_keeps_lines_and_a_partial_last_line() -> None:
    log = ContainerLog()
    log.write(b"one\ntw")
    log.write(b"o\nthree")
    assert read(log) == b"one\ntwo\nthree"
    assert read(log, tail_lines=2) == b"two\nthree"
    assert read(log, limit_bytes=5) == b"one\nt"
    assert log.tail(1, 3) == "ree"


def test_timestamps_prefix_every_line_as_kubelet_does() -> None:
    log = ContainerLog()
    log.write(b"a\nb\n")
    lines = read(log, timestamps=True).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["a", "b"]
    stamp = lines[0].split(" ", 1)[0]
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= datetime.now(UTC)
    assert rfc3339_nano(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"


def test_since_keeps_what_came_from_then_on() -> None:
    log = ContainerLog()
    log.write(b"old\n")
    time.sleep(0.05)
    middle = datetime.now(UTC)
    log.write(b"new\n")
    assert read(log, since=middle) == b"new\n"
    assert read(log, since=middle + timedelta(hours=1)) == b""


def test_a_follow_gets_what_comes_and_ends_with_the_container() -> None:
    log = ContainerLog()
    log.write(b"first\npart")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(log.read(LogOptions(follow=True))))
    reader.start()
    time.sleep(0.2)
    log.write(b"ial\nlast\n")
    time.sleep(0.2)
    assert reader.is_alive()  # the container runs: the follow waits
    log.close()
    reader.join(5)
    assert not reader.is_alive()
    assert b"".join(got) == b"first\npartial\nlast\n"


def test_a_gpu_node_is_labelled_tainted_and_offers_its_gpus() -> None:
    node = node_object(
        NodeSpec("n1", gpus=4, product="NVIDIA-H100-80GB-HBM3"), 10250, "2026-01-01T00:00:00Z", "x"
    )
    labels = node["metadata"]["labels"]
    assert labels[GPU_PRODUCT_LABEL] in gpu_products("H100")
    assert node["spec"]["taints"] == [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
    assert node["status"]["capacity"][GPU_RESOURCE] == node["status"]["allocatable"][GPU_RESOURCE] == "4"
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    cpu_node = node_object(NodeSpec("c1", gpus=0), 10250, "2026-01-01T00:00:00Z", "x")
    assert cpu_node["spec"]["taints"] == [] and GPU_RESOURCE not in cpu_node["status"]["capacity"]


class _Source:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]], token: str | None = None) -> None:
        self.objects = objects
        if token is not None:
            self.service_account_token = lambda pod, audience, seconds: f"{token}:{audience}:{seconds}"

    def find(self, rt: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((rt.plural, name))


PROJECTED = {
    "defaultMode": 0o644,
    "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ],
}


def test_a_projected_service_account_volume_has_its_token_ca_and_namespace() -> None:
    pod = {"metadata": {"name": "p", "namespace": "team", "uid": "u"}, "spec": {"nodeName": "n1"}}
    source = _Source({("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}}}, token="tok")
    files = podspec.projected_files(pod, PROJECTED, source)
    assert files == {
        "token": (b"tok:None:3607", 0o644),
        "ca.crt": (b"PEM", 0o644),
        "namespace": (b"team", 0o644),
    }


def test_a_source_that_cannot_issue_tokens_fails_the_pod() -> None:
    pod = {"metadata": {"name": "p", "namespace": "team", "uid": "u"}, "spec": {}}
    source = _Source({("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}}})
    with pytest.raises(StartFailure, match="cannot issue service account tokens"):
        podspec.projected_files(pod, PROJECTED, source)
