"""The node agent on the real API server: each agent acts only on the pods bound to its own nodes, as a
kubelet watches only its node's pods (a watch per node on spec.nodeName). Two agents side by side, as
when test sessions share the control plane: a pod bound to one agent's node is run and reported by that
agent alone, and the other never sees it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support.nodeagent import NodeAgent, NodeSpec
from tests.support.realcluster import ControlPlane, RealKube, wait_until

pytestmark = [pytest.mark.cluster]


def bound_pod(name: str, node: str) -> dict[str, object]:
    """A pod bound to node by its spec (no scheduler), admitted under Pod Security "restricted"."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "job",
                    "image": "scale",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def test_each_agent_runs_only_the_pods_bound_to_its_own_nodes(
    control_plane: ControlPlane, real_kube: RealKube
) -> None:
    tag = uuid.uuid4().hex[:6]
    first = NodeAgent.scale(control_plane.api_client(), control_plane.pki, duration=lambda pod: 600.0)
    second = NodeAgent.scale(control_plane.api_client(), control_plane.pki, duration=lambda pod: 600.0)
    seen: dict[str, set[str]] = {"first": set(), "second": set()}
    for label, agent in (("first", first), ("second", second)):
        observe = agent.observe

        def recording(kind: str, obj: dict[str, Any], label: str = label, observe: Any = observe) -> None:
            if obj["metadata"].get("namespace") == real_kube.namespace:  # others' pods may land on our nodes
                seen[label].add(obj["metadata"]["name"])
            observe(kind, obj)

        agent.observe = recording  # type: ignore[method-assign]
    with first, second:
        first.start([NodeSpec(f"mine-{tag}")])
        second.start([NodeSpec(f"theirs-{tag}")])
        pods = {"on-mine": f"mine-{tag}", "on-theirs": f"theirs-{tag}"}
        for name, node in pods.items():
            created = real_kube.kubectl("create", "-f", "-", input=json.dumps(bound_pod(name, node)))
            assert created.returncode == 0, created.stderr

        def running() -> dict[str, str] | None:
            phases = {
                pod["metadata"]["name"]: (pod.get("status") or {}).get("phase", "")
                for pod in real_kube.pods()
            }
            return phases if all(phases.get(name) == "Running" for name in pods) else None

        wait_until(running, 60, "both pods to run")
        assert seen == {"first": {"on-mine"}, "second": {"on-theirs"}}  # not even told of the other's
        ours = real_kube.namespace
        assert [pod.name for pod in first._pods.values() if pod.namespace == ours] == ["on-mine"]
        assert [pod.name for pod in second._pods.values() if pod.namespace == ours] == ["on-theirs"]
        assert (first.errors, second.errors) == ([], [])
        for pod in real_kube.pods():
            assert pod["status"]["hostIP"] and pod["spec"]["nodeName"] == pods[pod["metadata"]["name"]]
