"""The simulated default-scheduler: fits, FailedScheduling as kube-scheduler words it, and what the
runner makes of that wording."""

from __future__ import annotations

from runner.backends.kubernetes.pure.status import Request, pending_reason
from runner.render.gpus import gpu_placement
from tests.support.sim.api import condition
from tests.support.sim.builders import gpu_job
from tests.support.sim.fixtures import Cluster

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"


def scheduled(cluster: Cluster, job: str) -> dict:  # type: ignore[type-arg]
    [pod] = cluster.sim.pods_of(job)
    return condition(pod, "PodScheduled") or {}


def events(cluster: Cluster, name: str, reason: str) -> list[str]:
    return [
        e["message"]
        for e in cluster.server.list_objects("events")
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


def test_pods_fill_nodes_up_to_their_gpus_then_wait_with_the_schedulers_message(cluster: Cluster) -> None:
    cluster.sim.add_nodes(3, gpus=8)
    for index in range(6):
        cluster.server.create(gpu_job(f"big-{index}", gpus=4, seconds=600))
    cluster.server.create(gpu_job("one-more", gpus=1, seconds=600))
    cluster.server.create(gpu_job("too-many", gpus=2, seconds=600))
    cluster.sim.settle()

    nodes = [cluster.sim.pods_of(f"big-{i}")[0]["spec"]["nodeName"] for i in range(6)]
    assert sorted(nodes) == ["gpu-node-1"] * 2 + ["gpu-node-2"] * 2 + ["gpu-node-3"] * 2
    wanted = (
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    )
    for job in ("one-more", "too-many"):
        state = scheduled(cluster, job)
        assert (state["status"], state["reason"], state["message"]) == ("False", "Unschedulable", wanted)
    [pod] = cluster.sim.pods_of("one-more")
    assert events(cluster, pod["metadata"]["name"], "FailedScheduling") == [wanted]
    assert pending_reason(wanted, Request(gpus=1, gpu_type="H100")) == "waiting: no node has 1 free H100 GPU"


def test_a_waiting_pod_binds_when_a_gpu_frees(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1, gpus=1)
    cluster.server.create(gpu_job("first", seconds=100))
    cluster.server.create(gpu_job("second", seconds=100))
    cluster.sim.settle()
    assert scheduled(cluster, "second")["status"] == "False"

    cluster.sim.advance(100)

    [pod] = cluster.sim.pods_of("second")
    assert pod["spec"]["nodeName"] == "gpu-node-1"
    assert pod["status"]["phase"] == "Running"
    assert events(cluster, pod["metadata"]["name"], "Scheduled") == [
        f"Successfully assigned {cluster.namespace}/{pod['metadata']['name']} to gpu-node-1"
    ]


def test_gpu_type_goes_by_the_product_label(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1, gpu_product=A100, prefix="a100")
    cluster.sim.add_nodes(1, gpu_product=H100, prefix="h100")
    cluster.server.create(gpu_job("on-h100", product=H100))
    cluster.server.create(gpu_job("on-b200", product="NVIDIA-B200"))
    cluster.sim.settle()

    assert cluster.sim.pods_of("on-h100")[0]["spec"]["nodeName"] == "h100-2"
    message = scheduled(cluster, "on-b200")["message"]
    assert message == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
    )
    assert pending_reason(message, Request(gpus=1, gpu_type="NVIDIA-B200")) == (
        "waiting: no node has NVIDIA-B200 GPUs"
    )


def test_the_gpu_taint_keeps_pods_without_the_toleration_off(cluster: Cluster) -> None:
    cluster.sim.add_nodes(2)
    cluster.sim.add_nodes(1, gpus=0, prefix="cpu")
    untolerant = gpu_job("untolerant")
    del untolerant["spec"]["template"]["spec"]["tolerations"]
    cluster.server.create(untolerant)
    cluster.server.create(gpu_job("cpu-only", gpus=0))
    cluster.sim.settle()

    message = scheduled(cluster, "untolerant")["message"]
    assert message == (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint "
        "{nvidia.com/gpu: present}. preemption: 0/3 nodes are available: 1 No preemption victims found for "
        "incoming pod, 2 Preemption is not helpful for scheduling.."
    )
    assert "nodes have taints the job does not tolerate" in pending_reason(message, Request(gpus=1))
    assert cluster.sim.pods_of("cpu-only")[0]["spec"]["nodeName"] == "cpu-3"


def test_cordoned_and_lost_nodes_take_no_pods(cluster: Cluster) -> None:
    cluster.sim.add_nodes(2)
    cluster.sim.cordon("gpu-node-1")
    cluster.sim.lose_node("gpu-node-2")
    cluster.server.create(gpu_job("nowhere"))
    cluster.sim.settle()

    message = scheduled(cluster, "nowhere")["message"]
    assert message.startswith(
        "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
        "1 node(s) were unschedulable. "
    )
    assert pending_reason(message, Request(gpus=1)) == (
        "waiting: nodes have taints the job does not tolerate (node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }) (1 of 2 nodes); "
        "nodes are cordoned (unschedulable) (1 of 2 nodes)"
    )

    cluster.sim.cordon("gpu-node-1", unschedulable=False)
    assert cluster.sim.pods_of("nowhere")[0]["spec"]["nodeName"] == "gpu-node-1"


def test_cpu_and_memory_requests_count_too(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1, cpu="8", memory="32Gi")
    job = gpu_job("hungry")
    job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(cpu="16", memory="64Gi")
    cluster.server.create(job)
    cluster.sim.settle()

    message = scheduled(cluster, "hungry")["message"]
    assert message.startswith("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. ")
    assert pending_reason(message, Request(gpus=1, cpu_millis=16000, memory_bytes=64 * 2**30)) == (
        "waiting: no node has 16 free CPUs; no node has 64Gi free memory"
    )


def test_no_nodes_at_all(cluster: Cluster) -> None:
    cluster.server.create(gpu_job("alone"))
    cluster.sim.settle()
    assert scheduled(cluster, "alone")["message"] == "no nodes available to schedule pods"
    cluster.sim.add_nodes(1)
    assert scheduled(cluster, "alone")["status"] == "True"


def test_a_model_name_reaches_nodes_labelled_with_its_full_product_name(cluster: Cluster) -> None:
    """The runner renders gpuType H100 as a required node affinity on the H100 products (render/gpus.py)."""
    cluster.sim.add_nodes(1, gpu_product=A100, prefix="a100")
    cluster.sim.add_nodes(1, gpu_product="NVIDIA-H100-PCIe", prefix="h100")
    job = gpu_job("any-h100")
    pod_spec = job["spec"]["template"]["spec"]
    pod_spec.update(gpu_placement("H100"))
    cluster.server.create(job)
    cluster.sim.settle()
    assert cluster.sim.pods_of("any-h100")[0]["spec"]["nodeName"] == "h100-2"
