"""The Node and Lease objects a node agent registers, as a kubelet on a GPU node with NVIDIA's device
plugin and GPU feature discovery would have them. Pure functions of a NodeSpec and the time."""

from __future__ import annotations

import platform
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.render.gpus import GPU_PRODUCT_LABEL

Obj = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
"""What GPU node pools carry (GKE's and others'), so that only pods that tolerate it land there."""
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40  # kubelet's default nodeLeaseDurationSeconds
KUBELET_VERSION = "v1.36.3"

# GPU feature discovery's memory label, in MiB, for the products tests use; others get none.
GPU_MEMORY_MIB = {
    "NVIDIA-H100-80GB-HBM3": 81559,
    "NVIDIA-H100-PCIe": 81559,
    "NVIDIA-H100-NVL": 95830,
    "NVIDIA-H100-SXM5-80GB": 81559,
    "NVIDIA-H200": 143771,
    "NVIDIA-A100-SXM4-80GB": 81920,
    "NVIDIA-A100-SXM4-40GB": 40960,
    "NVIDIA-L4": 23034,
    "Tesla-T4": 15360,
}


@dataclass(frozen=True)
class NodeSpec:
    """One node: its name, GPUs (0: a CPU node, without the GPU labels and taint) and their product
    label, and what it offers the scheduler."""

    name: str
    gpus: int = 8
    product: str = "NVIDIA-H100-80GB-HBM3"
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)


def stamp(moment: datetime | None = None) -> str:
    """metav1.Time: RFC 3339 in seconds, UTC."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_stamp(moment: datetime | None = None) -> str:
    """metav1.MicroTime, as Leases hold their times."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_labels(spec: NodeSpec) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "runner-node-agent",
    }
    if spec.gpus:
        labels.update(
            {
                GPU_PRODUCT_LABEL: spec.product,
                "nvidia.com/gpu.count": str(spec.gpus),
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.family": "hopper" if "H100" in spec.product or "H200" in spec.product else "",
            }
        )
        if not labels["nvidia.com/gpu.family"]:
            del labels["nvidia.com/gpu.family"]
        if spec.product in GPU_MEMORY_MIB:
            labels["nvidia.com/gpu.memory"] = str(GPU_MEMORY_MIB[spec.product])
    labels.update(spec.labels)
    return labels


def resources(spec: NodeSpec) -> dict[str, str]:
    found = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": "1Ti",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    if spec.gpus:
        found[GPU_RESOURCE] = str(spec.gpus)
    return found


def conditions(now: str, *, ready: bool = True) -> list[Obj]:
    """Ready (kubelet's words) and the three pressures, all heartbeating now."""

    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return [
        condition(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition(
            "Ready",
            "True" if ready else "False",
            "KubeletReady" if ready else "KubeletNotReady",
            "kubelet is posting ready status" if ready else "container runtime is down",
        ),
    ]


def node_status(spec: NodeSpec, port: int, now: str, runtime_version: str) -> Obj:
    return {
        "capacity": resources(spec),
        "allocatable": resources(spec),
        "conditions": conditions(now),
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, spec.name).hex,
            "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
            "bootID": str(uuid.uuid4()),
            "kernelVersion": platform.release(),
            "osImage": "runner node agent",
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(spec: NodeSpec, port: int, now: str, runtime_version: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": node_labels(spec)},
        "spec": {"taints": [dict(GPU_TAINT)] if spec.gpus else []},
        "status": node_status(spec, port, now, runtime_version),
    }


def lease_object(node: str, node_uid: str, renewed: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}],
        },
        "spec": {"holderIdentity": node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renewed},
    }
