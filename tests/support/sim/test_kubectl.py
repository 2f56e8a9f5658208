"""Real kubectl against the simulated cluster: what an operator sees."""

from __future__ import annotations

from tests.support.sim.builders import gpu_job
from tests.support.sim.fixtures import Cluster


def test_get_describe_logs_and_delete(cluster: Cluster) -> None:
    cluster.sim.add_nodes(2)
    cluster.server.create(gpu_job("mnist", seconds=30))
    cluster.server.create(gpu_job("huge", gpus=16))
    cluster.sim.advance(30)
    [pod] = cluster.sim.pods_of("mnist")
    name = pod["metadata"]["name"]

    nodes = cluster.kube.kubectl("get", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert [line.split()[:2] for line in nodes.stdout.splitlines()[1:]] == [
        ["gpu-node-1", "Ready"],
        ["gpu-node-2", "Ready"],
    ]
    jobs = cluster.kube.kubectl("get", "jobs")
    rows = {line.split()[0]: line.split()[1:3] for line in jobs.stdout.splitlines()[1:]}
    assert rows == {"huge": ["Running", "0/1"], "mnist": ["Complete", "1/1"]}

    logs = cluster.kube.kubectl("logs", "job/mnist")
    assert logs.returncode == 0, logs.stderr
    assert (
        logs.stdout
        == f"[sim] {name} running on {pod['spec']['nodeName']} for 30s\n[sim] {name} exiting with code 0\n"
    )

    described = cluster.kube.kubectl("describe", "pod", "-l", "job-name=huge")
    assert described.returncode == 0, described.stderr
    assert "FailedScheduling" in described.stdout
    assert "0/2 nodes are available: 2 Insufficient nvidia.com/gpu." in described.stdout

    node = cluster.kube.kubectl("describe", "node", "gpu-node-1")
    assert "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3" in node.stdout
    assert "nvidia.com/gpu=present:NoSchedule" in node.stdout

    deleted = cluster.kube.kubectl("delete", "job", "mnist", "--cascade=foreground")
    assert deleted.returncode == 0, deleted.stderr
    cluster.sim.settle()
    assert cluster.server.find("jobs", "mnist") is None
    assert [p["metadata"]["name"] for p in cluster.server.list_objects("pods")] == [
        cluster.sim.pods_of("huge")[0]["metadata"]["name"]
    ]


def test_kubectl_logs_follow_streams_a_running_pod(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("live", seconds=10))
    cluster.sim.settle()
    [pod] = cluster.sim.pods_of("live")
    follower = cluster.kube.kubectl_popen("logs", "-f", pod["metadata"]["name"])
    cluster.server.wait_for_streams(1)
    cluster.sim.advance(10)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out.splitlines()[-1].endswith("exiting with code 0")
