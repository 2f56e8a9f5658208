"""Run a node agent on its own, for trying the cluster backend on one machine:

    scripts/cluster.sh start && eval "$(scripts/cluster.sh env)"
    python -m tests.support.nodeagent --nodes 2 --gpus 8 --product NVIDIA-H100-80GB-HBM3

It registers the nodes, prints them, and runs their pods as Docker containers (or, with --scale SECONDS,
completes each pod after that many seconds without a container) until SIGTERM or Ctrl-C, then stops every
container and deletes its Nodes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from tests.support.nodeagent.agent import NodeAgent
from tests.support.nodeagent.nodes import NodeSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.nodeagent", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--nodes", type=int, default=2, help="how many nodes (default 2)")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs per node, 0 for CPU nodes (default 8)")
    parser.add_argument("--product", default="NVIDIA-H100-80GB-HBM3", help="nvidia.com/gpu.product label")
    parser.add_argument("--prefix", default="gpu-node-", help="node names: PREFIX1, PREFIX2, ...")
    parser.add_argument("--cpu", default="64", help="cpu per node (default 64)")
    parser.add_argument("--memory", default="512Gi", help="memory per node (default 512Gi)")
    parser.add_argument(
        "--scale", type=float, metavar="SECONDS", help="no containers: pods end after SECONDS"
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG")
    parser.add_argument(
        "--pki",
        type=Path,
        default=Path(os.environ.get("RUNNER_KUBE_STATE", "/var/tmp/runner-kube")) / "pki",
        help="where kubelet.crt/.key and ca.crt are (default: $RUNNER_KUBE_STATE/pki)",
    )
    parser.add_argument("--keep-nodes", action="store_true", help="leave the Nodes registered on exit")
    args = parser.parse_args(argv)

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, client_configuration=configuration
    )
    configuration.connection_pool_maxsize = 16
    api = client.ApiClient(configuration)
    options: dict[str, Any] = {"delete_nodes": not args.keep_nodes}
    if args.scale is not None:
        seconds = args.scale
        agent = NodeAgent.scale(api, args.pki, duration=lambda pod: seconds, **options)
    else:
        import docker

        agent = NodeAgent.docker(api, docker.from_env(), args.pki, **options)
    specs = [
        NodeSpec(
            f"{args.prefix}{index}", gpus=args.gpus, product=args.product, cpu=args.cpu, memory=args.memory
        )
        for index in range(1, args.nodes + 1)
    ]
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.start(specs)
    try:
        mode = (
            f"scale mode, pods end after {args.scale:g}s" if args.scale is not None else "Docker containers"
        )
        print(f"node agent {agent.id}: kubelet endpoint https://127.0.0.1:{agent.port}, pods as {mode}")
        for spec in specs:
            gpus = f"{spec.gpus} x {spec.product}" if spec.gpus else "no GPUs"
            print(f"  node {spec.name}: {gpus}, cpu {spec.cpu}, memory {spec.memory}")
        sys.stdout.flush()
        done.wait()
    finally:
        print("node agent: stopping", file=sys.stderr)
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
