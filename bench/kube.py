"""The kubernetes backend's cost in API requests and wall time, against kubectl, side by side.

    runner's submit (ConfigMap + Job, official client)  vs  kubectl create -f of the same objects
    runner's status of a run (Job, then its pods)        vs  kubectl get job,pods -l runner.dev/run=...

Against the fake API server of the tests (tests/kube), on loopback: the figures count requests and the
client-side time per operation, not a real control plane's latency. Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.backends.base import RunPlan  # noqa: E402
from runner.backends.kubernetes.backend import KubernetesBackend  # noqa: E402
from runner.config import load_settings  # noqa: E402
from runner.records import RunRecords  # noqa: E402
from runner.render import render_job, resolved_yaml, to_yaml  # noqa: E402
from runner.service.plan import new_run_id  # noqa: E402
from runner.spec import load_manifest  # noqa: E402
from tests.support.apiserver.apiserver import FakeKubeServer  # noqa: E402
from tests.support.apiserver.fixtures import kubectl_binary, write_kubeconfig  # noqa: E402

NAMESPACE = "bench"
IMAGE = "127.0.0.1:5000/runner/mnist:bench"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    server = FakeKubeServer(default_namespace=NAMESPACE).start()
    try:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        with tempfile.TemporaryDirectory() as scratch:
            kubeconfig = write_kubeconfig(Path(scratch) / "config", server.url, NAMESPACE)
            os.environ.update(
                KUBECONFIG=str(kubeconfig),
                RUNNER_HOME=str(Path(scratch) / "home"),
                RUNNER_STORE="s3://bench/runs",
            )
            return run(server, Path(scratch), args.repeat)
    finally:
        server.stop()


def measure(server: FakeKubeServer, action: object) -> tuple[float, int]:
    before = len(server.requests)
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started, len(server.requests) - before


def run(server: FakeKubeServer, scratch: Path, repeat: int) -> int:
    settings = load_settings()
    records = RunRecords(settings.database)
    loaded = load_manifest(REPO / "jobs" / "mnist" / "job.yaml")
    backend = KubernetesBackend()
    kubectl = str(kubectl_binary())
    env = {**os.environ, "HOME": str(scratch)}
    ours_submit, ours_status, theirs_submit, theirs_status = [], [], [], []
    for _ in range(repeat):
        run_id = new_run_id("mnist")
        plan = RunPlan(run_id, loaded.manifest, resolved_yaml(loaded.manifest), REPO / "jobs", image=IMAGE)
        ours_submit.append(measure(server, lambda plan=plan: backend.launch(plan, records, settings)))
        record = records.get(run_id)
        ours_status.append(measure(server, lambda record=record: backend.refresh(record, records, settings)))
        other = new_run_id("mnist")
        text = to_yaml(render_job(loaded.manifest, run_id=other, image=IMAGE, store_url="s3://bench/runs"))
        theirs_submit.append(
            measure(
                server,
                lambda text=text: subprocess.run(
                    [kubectl, "create", "-f", "-"],
                    input=text,
                    text=True,
                    env=env,
                    check=True,
                    capture_output=True,
                ),
            )
        )
        theirs_status.append(
            measure(
                server,
                lambda other=other: subprocess.run(
                    [kubectl, "get", "job,pods", "-l", f"runner.dev/run={other}"],
                    env=env,
                    check=True,
                    capture_output=True,
                ),
            )
        )

    def row(name: str, ours: list[tuple[float, int]], baseline: str, theirs: list[tuple[float, int]]) -> str:
        a, b = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in theirs)
        ra, rb = statistics.median(n for _, n in ours), statistics.median(n for _, n in theirs)
        return (
            f"{name:<22} {ra:4.0f} requests {a * 1000:8.1f} ms   {baseline:<28} {rb:4.0f} requests "
            f"{b * 1000:8.1f} ms   {a / b:5.2f}x"
        )

    print(f"median of {repeat}; ratio = runner time / kubectl time (kubectl includes its process start-up)")
    print(row("submit (ConfigMap+Job)", ours_submit, "kubectl create -f", theirs_submit))
    print(row("status", ours_status, "kubectl get job,pods -l", theirs_status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
