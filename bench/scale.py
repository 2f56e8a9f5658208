"""The runner at cluster scale (100 nodes x 8 GPUs, 10,000 jobs), against kubectl, side by side.

    submit through RunService (4 threads)    vs  kubectl create -f of the same rendered objects, 500 a batch
    statuses: the runner polling its runs     (before: a GET and a LIST per live run, sampled and scaled up)
    runner list (the CLI), 10,000 runs        vs  kubectl get jobs (which pages 500 at a time)
    runner list --cluster from a fresh home   vs  kubectl get jobs   (adoption of 10,000 Jobs)

The cluster is tests/sim's simulator behind tests/kube's fake API server, on a fake clock that this bench
drives: submissions happen with time standing still (the first 800 pods start, the rest wait for GPUs,
as on a full cluster); then the bench moves time on by one job duration (60 s) at a time and the runner
polls all its runs after each step, until none is pending or running. Real time is therefore spent only
on what the runner, the API server and the controllers do, never on waiting, so the full run takes a
few minutes on two cores; "time until all statuses are known" is the polls' own time. The kubectl
baseline runs against a second, identical simulated cluster, so both submit into the same conditions.

API requests are counted and timed by the fake server itself (FakeKubeServer.timings: from request read
to answer written); mutating requests (POST/PUT/PATCH/DELETE) are set against the Kubernetes API SLO,
p99 <= 1 s. Everything is in one process apart from kubectl and the runner CLI, so the server's and
the simulator's work share two cores with the runner's. Needs a Docker engine and the registry on
127.0.0.1:5000 (scripts/engine.sh start) and the tests' python base image; the job image is built and
pushed on the first submission only. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import runner.backends.kubernetes.backend as kube_backend  # noqa: E402
import runner.backends.kubernetes.client as kube_client  # noqa: E402
from runner.config import load_settings  # noqa: E402
from runner.render import render_job, to_yaml  # noqa: E402
from runner.service.plan import new_run_id  # noqa: E402
from runner.service.runs import RunService  # noqa: E402
from runner.spec import LoadedManifest, load_manifest  # noqa: E402
from tests.support.apiserver.apiserver import FakeKubeServer  # noqa: E402
from tests.support.apiserver.fixtures import kubectl_binary, write_kubeconfig  # noqa: E402
from tests.support.engine.base_images import python_base  # noqa: E402
from tests.support.sim.clock import FakeClock  # noqa: E402
from tests.support.sim.cluster import Simulator  # noqa: E402

NAMESPACE = "bench"
SECONDS = 60.0  # every job runs a minute of simulated time (the scale runtime's default)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
SLO = 1.0
JOB = """apiVersion: runner/v1
kind: Job
metadata: {name: scale}
spec:
  image: {base: BASE, context: .}
  command: [python, -c, "print('hi')"]
  resources: {gpu: 1, cpu: 1, memory: 1Gi}
  kubernetes: {namespace: bench}
"""


@dataclass
class Window:
    """The requests a server answered during one measured span."""

    seconds: float
    requests: int
    mutating: list[float]

    def p(self, q: float) -> float:
        if not self.mutating:
            return float("nan")
        ordered = sorted(self.mutating)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def window(server: FakeKubeServer) -> Iterator[list[Window]]:
    out: list[Window] = []
    start, requests = len(server.timings), len(server.requests)
    began = time.perf_counter()
    yield out
    elapsed = time.perf_counter() - began
    answered = server.timings[start:]
    out.append(
        Window(elapsed, len(server.requests) - requests, [t for r, t in answered if r.method in MUTATING])
    )


def cluster(nodes: int, gpus: int, scratch: Path, name: str) -> tuple[FakeKubeServer, Simulator, Path]:
    server = FakeKubeServer(default_namespace=NAMESPACE).start()
    server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    sim = Simulator(server, clock=FakeClock()).start()
    sim.add_nodes(nodes, gpus=gpus)
    return server, sim, write_kubeconfig(scratch / f"{name}.kubeconfig", server.url, NAMESPACE)


def submit_all(loaded: LoadedManifest, count: int, threads: int) -> list[str]:
    """Submit count runs from threads, each with its own RunService (its own SQLite connection)."""
    ids: list[str] = []
    lock = threading.Lock()
    per_thread = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

    def work(n: int) -> None:
        service = RunService(load_settings())
        for _ in range(n):
            record = service.submit_manifest(loaded, "kubernetes")
            with lock:
                ids.append(record.id)

    workers = [threading.Thread(target=work, args=(n,)) for n in per_thread if n]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return ids


def verdict(measured: Window) -> str:
    return "met" if measured.p(0.99) <= SLO else "MISSED"


def cli(args: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds the command takes (process start-up included) and its stdout's line count."""
    began = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout.count("\n")


def row(name: str, ours: str, baseline: str = "", theirs: str = "", ratio: float | None = None) -> None:
    tail = f"   {ratio:7.2f}x" if ratio is not None else ""
    print(f"{name:<34} {ours:<38} {baseline:<26} {theirs:<30}{tail}")


def run(args: argparse.Namespace, scratch: Path) -> None:
    base = python_base()
    context = scratch / "job"
    context.mkdir()
    (context / "job.yaml").write_text(JOB.replace("BASE", base))
    home = scratch / "home"
    os.environ.update(
        RUNNER_HOME=str(home),
        RUNNER_STORE="s3://bench/runs",
        RUNNER_REGISTRY="127.0.0.1:5000",
        RUNNER_BACKEND="kubernetes",
        KUBECACHEDIR=str(scratch / "kubecache"),
        HOME=str(scratch),
    )
    loaded = load_manifest(context / "job.yaml")
    kubectl = str(kubectl_binary())
    n, threads = args.jobs, args.threads
    print(
        f"{args.nodes} nodes x {args.gpus} GPUs, {n} one-GPU jobs of {SECONDS:g} s, {threads} submit threads"
    )

    # --- kubectl baseline on its own identical cluster -------------------------------------------------
    server_b, sim_b, config_b = cluster(args.nodes, args.gpus, scratch, "baseline")
    env_b = {**os.environ, "KUBECONFIG": str(config_b)}
    image = "127.0.0.1:5000/runner/scale:bench"
    batches, objects = [], []
    for index in range(n):
        run_id = new_run_id("scale")
        objects += render_job(
            loaded.manifest, run_id=run_id, image=image, store_url="s3://bench/runs", namespace=NAMESPACE
        )
        if len(objects) >= 2 * args.batch or index == n - 1:
            batches.append(to_yaml(objects))
            objects = []
    with window(server_b) as kubectl_submit:
        for text in batches:
            subprocess.run(
                [kubectl, "create", "-f", "-"],
                input=text,
                text=True,
                env=env_b,
                check=True,
                capture_output=True,
            )
    sim_b.stop()
    server_b.stop()

    # --- the runner ------------------------------------------------------------------------------------
    server, sim, config = cluster(args.nodes, args.gpus, scratch, "runner")
    os.environ["KUBECONFIG"] = str(config)
    env = dict(os.environ)
    began = time.perf_counter()
    first = submit_all(loaded, 1, 1)  # builds and pushes the job image (once)
    print(f"first submission (image build and push included): {time.perf_counter() - began:.1f} s")
    sample = max(1, min(200, n // 20))
    fresh_client = kube_client.shared_client
    kube_client.shared_client = kube_client.api_client
    with window(server) as before_submit:  # as before: a new API client (kubeconfig, connection) per run
        submit_all(loaded, sample, threads)
    kube_client.shared_client = fresh_client
    with window(server) as runner_submit:
        submit_all(loaded, n - 1 - sample, threads)
    sim.settle(600)
    r, k, b = runner_submit[0], kubectl_submit[0], before_submit[0]
    print("\n--- submission ---")
    row("", "runner (RunService)", "", "kubectl create -f")
    row("jobs/s (before: new client per run)", f"{sample / b.seconds:8.1f}", "", "")
    row(
        "jobs/s",
        f"{(n - 1 - sample) / r.seconds:8.1f}",
        "",
        f"{n / k.seconds:8.1f}",
        k.seconds * (n - 1 - sample) / n / r.seconds,
    )
    row("API requests per job", f"{r.requests / (n - 1 - sample):8.2f}", "", f"{k.requests / n:8.2f}")
    row(
        "mutating p50 / p99 (server)",
        f"{r.p(0.5) * 1000:7.1f} / {r.p(0.99) * 1000:7.1f} ms",
        "",
        f"{k.p(0.5) * 1000:7.1f} / {k.p(0.99) * 1000:7.1f} ms",
    )
    print(f"SLO mutating p99 <= {SLO:g} s: runner {verdict(r)}, kubectl {verdict(k)}")

    # --- statuses ---------------------------------------------------------------------------------------
    service = RunService(load_settings())
    records = service.records
    live = records.list()
    backend = kube_backend.KubernetesBackend()
    probe = live[:sample]
    with window(server) as before_poll:  # the old way: a GET of the Job and a LIST of its pods per run
        for record in probe:
            backend.refresh(record, records, service.settings)
    bp = before_poll[0]
    print("\n--- statuses (all runs live: 800 running, the rest waiting for GPUs) ---")
    print(
        f"before: per-run refresh, {sample} runs sampled: {bp.seconds / sample * 1000:.1f} ms and "
        f"{bp.requests / sample:.1f} requests a run; "
        f"one poll of {n} runs ~ {bp.seconds / sample * n:.0f} s, {bp.requests / sample * n:.0f} requests"
    )

    # `runner list` with every run live
    mid = {
        "list (limit 50)": cli([sys.executable, "-m", "runner.cli.main", "list"], env),
        "list --limit 10000 -o name": cli(
            [sys.executable, "-m", "runner.cli.main", "list", "--limit", "10000", "-o", "name"], env
        ),
    }
    polls, poll_seconds, poll_requests = 0, [], []
    with window(server) as completion:
        while True:
            with window(server) as one:
                listed = service.list_runs()
            polls += 1
            poll_seconds.append(one[0].seconds)
            poll_requests.append(one[0].requests)
            if not any(not record.state.terminal for record in listed):
                break
            sim.advance(SECONDS)
    c = completion[0]
    print(
        f"after: bulk refresh: {polls} polls (a poll after each {SECONDS:g} s of cluster time), "
        f"{statistics.mean(poll_requests):.1f} requests a poll, "
        f"poll {statistics.median(poll_seconds):.2f} s median, "
        f"{max(poll_seconds):.2f} s max; all {n} statuses known after {sum(poll_seconds):.1f} s of polling "
        f"({c.seconds:.1f} s with the simulated cluster's work); ratio before/after one poll: "
        f"{bp.seconds / sample * n / max(poll_seconds):.1f}x"
    )
    states: dict[str, int] = {}
    for record in listed:
        states[record.state.value] = states.get(record.state.value, 0) + 1
    print(f"final states: {states}")

    # --- listing ----------------------------------------------------------------------------------------
    print("\n--- listing at", n, "runs (the real CLI; process start-up included) ---")
    theirs, lines = cli([kubectl, "get", "jobs", "-n", NAMESPACE], env)
    for name, (seconds, count) in mid.items():
        row(
            f"{name} (all live)",
            f"{seconds * 1000:8.0f} ms, {count} lines",
            "kubectl get jobs",
            f"{theirs * 1000:8.0f} ms, {lines} lines",
            seconds / theirs,
        )
    for name, argv in (
        ("list (limit 50)", ["list"]),
        ("list --limit 10000 -o name", ["list", "--limit", "10000", "-o", "name"]),
    ):
        seconds, count = cli([sys.executable, "-m", "runner.cli.main", *argv], env)
        row(
            f"{name} (all done)",
            f"{seconds * 1000:8.0f} ms, {count} lines",
            "kubectl get jobs",
            f"{theirs * 1000:8.0f} ms, {lines} lines",
            seconds / theirs,
        )
    fresh = {**env, "RUNNER_HOME": str(scratch / "fresh-home")}
    with window(server) as adoption:
        seconds, count = cli(
            [sys.executable, "-m", "runner.cli.main", "list", "--cluster", "--limit", str(n), "-o", "name"],
            fresh,
        )
    row(
        "list --cluster, fresh home",
        f"{seconds * 1000:8.0f} ms, {count} lines",
        "kubectl get jobs",
        f"{theirs * 1000:8.0f} ms, {lines} lines",
        seconds / theirs,
    )
    print(f"  (adoption: {adoption[0].requests} API requests for {n} Jobs)")
    batch, _ = backend._apis()
    began = time.perf_counter()
    batch.list_namespaced_job(NAMESPACE, label_selector="app.kubernetes.io/managed-by=runner")
    print(
        "  before: the unpaginated LIST into the client's models alone took "
        f"{time.perf_counter() - began:.1f} s"
    )
    del first
    sim.stop()
    server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="jobs per kubectl create -f")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        run(args, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
