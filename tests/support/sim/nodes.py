"""Node objects as a GPU node pool registers them: the kubelet's capacity and conditions, GPU feature
discovery's labels, the NVIDIA device plugin's `nvidia.com/gpu` resource and the pool's GPU taint."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
KUBELET_VERSION = "v1.31.4"


def _condition(kind: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def ready_conditions(now: str) -> list[Obj]:
    return [
        _condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
        ),
        _condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
        _condition(
            "PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", now
        ),
        _condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now),
    ]


def unknown_conditions(now: str) -> list[Obj]:
    """What the node lifecycle controller writes when a kubelet stops posting status."""
    return [
        _condition(kind, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", now)
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]


def node_object(
    name: str,
    index: int,
    *,
    gpus: int,
    gpu_product: str,
    cpu: str,
    memory: str,
    pods: int,
    labels: dict[str, str] | None,
    now: str,
) -> Obj:
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "1Ti"}
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    spec: Obj = {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
        node_labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": gpu_product,
            "nvidia.com/gpu.count": str(gpus),
        }
        spec["taints"] = [dict(GPU_TAINT)]
    node_labels |= labels or {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": ready_conditions(now),
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 2}"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "kernelVersion": "5.15.0-105-generic",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "machineID": f"{index:032x}",
                "systemUUID": f"00000000-0000-0000-0000-{index:012x}",
                "bootID": f"00000000-0000-0000-0001-{index:012x}",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }


def host_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address["address"])
    return "10.0.0.1"
