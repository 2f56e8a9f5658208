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

--real: the same comparisons against the real control plane (scripts/cluster.sh start) with the node
agent's scale mode (tests/support/nodeagent: NODES nodes of GPUS GPUs registered on the real API server,
each pod "runs" for --duration seconds, no containers), the real kube-scheduler, Job controller and
garbage collector. The runner's and kubectl's objects go to two fresh namespaces; kubectl's Jobs are created
suspended so that they do not take the GPUs the runner's runs need (kubectl's side therefore has no pods
being made and scheduled meanwhile: the comparison is, if anything, against the runner). Mutating request
latency comes from the API server's own apiserver_request_duration_seconds histogram (kubectl get --raw
/metrics before and after each window; quantiles interpolated within buckets, as histogram_quantile). At
--list-at counts beyond the submitted runs, suspended runner Jobs are added with kubectl create -f (they
list as adopted runs) to measure listing alone: each listing in its own process (RUNNER_RESIDENT=0), then
through a resident runner (the console script's default, runner.cli.resident), whose process has
runner's modules and the Kubernetes client imported. --live lists while every run is still running (room
for all of them, pods that run long), where each refresh must tell running from waiting.

    .venv/bin/python bench/scale.py --real --jobs 2000 --list-at 2000,10000
    .venv/bin/python bench/scale.py --real --jobs 2000 --nodes 250 --duration 3600 --live
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import runner.backends.kubernetes.backend as kube_backend  # noqa: E402
import runner.backends.kubernetes.client as kube_client  # noqa: E402
from runner.config import load_settings  # noqa: E402
from runner.records import RunState  # noqa: E402
from runner.render import render_job, to_yaml  # noqa: E402
from runner.service.plan import new_run_id  # noqa: E402
from runner.service.runs import RunService  # noqa: E402
from runner.spec import LoadedManifest, load_manifest  # noqa: E402
from tests.support.apiserver.apiserver import FakeKubeServer  # noqa: E402
from tests.support.apiserver.fixtures import kubectl_binary, write_kubeconfig  # noqa: E402
from tests.support.engine.base_images import python_base  # noqa: E402
from tests.support.resident import ENTRY, resident_server  # noqa: E402
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
    print(f"{name:<58} {ours:<38} {baseline:<26} {theirs:<30}{tail}")


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


# --- against the real control plane (scripts/cluster.sh) ------------------------------------------------


BUCKET = re.compile(r"^apiserver_request_duration_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def real_env() -> dict[str, str]:
    done = subprocess.run(
        [str(REPO / "scripts" / "cluster.sh"), "env"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"no control plane: scripts/cluster.sh env: {done.stderr.strip()}")
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value.strip("'\"")
    return found


Histogram = dict[tuple[str, str, str], dict[float, float]]  # (verb, group, resource) -> le -> count


def histogram(kubectl: str, env: dict[str, str]) -> Histogram:
    """apiserver_request_duration_seconds buckets of the mutating verbs, as the API server counts them."""
    text = subprocess.run(
        [kubectl, "get", "--raw", "/metrics"], env=env, capture_output=True, text=True, check=True
    ).stdout
    found: Histogram = {}
    for line in text.splitlines():
        match = BUCKET.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") not in MUTATING:
            continue
        key = (labels["verb"], labels.get("group", ""), labels.get("resource", ""))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        found.setdefault(key, {})[le] = found.setdefault(key, {}).get(le, 0.0) + float(match["value"])
    return found


def delta(
    after: Histogram, before: Histogram, keys: Sequence[tuple[str, str, str]] | None = None
) -> dict[float, float]:
    """The buckets (cumulative) of the requests answered between two snapshots, summed over keys."""
    summed: dict[float, float] = {}
    for key, buckets in after.items():
        if keys is not None and key not in keys:
            continue
        for le, count in buckets.items():
            summed[le] = summed.get(le, 0.0) + count - before.get(key, {}).get(le, 0.0)
    return summed


def quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative buckets: linear within the bucket that holds q."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return float("nan")
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-9)
        lower, below = le, buckets[le]
    return lower


def latency(buckets: dict[float, float]) -> str:
    count = int(buckets.get(float("inf"), 0))
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    verdict_ = "met" if p99 <= SLO else "MISSED"
    return f"{p50 * 1000:6.1f} / {p99 * 1000:6.1f} ms ({count} req, SLO {verdict_})"


def run_real(args: argparse.Namespace, scratch: Path) -> None:
    import uuid

    from kubernetes import client, config
    from moto.server import ThreadedMotoServer

    from tests.support.nodeagent import NodeAgent, NodeSpec

    cluster_env = real_env()
    state = Path(cluster_env["RUNNER_KUBE_STATE"])
    admin = str(state / "admin.kubeconfig")
    kubectl = shutil.which("kubectl") or str(kubectl_binary())
    tag = uuid.uuid4().hex[:6]
    ours, theirs_ns = f"bench-{tag}", f"bench-kubectl-{tag}"

    configuration = client.Configuration()
    config.load_kube_config(config_file=admin, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = args.nodes + 16  # a watch per node, and the workers
    api = client.ApiClient(configuration)
    core = client.CoreV1Api(api)
    for namespace in (ours, theirs_ns):
        body: Any = {"metadata": {"name": namespace}}
        core.create_namespace(body)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    base = python_base()
    context = scratch / "job"
    context.mkdir()
    (context / "job.yaml").write_text(
        JOB.replace("BASE", base).replace("namespace: bench", f"namespace: {ours}")
    )
    os.environ.update(
        RUNNER_HOME=str(scratch / "home"),
        RUNNER_STORE="s3://bench/runs",
        RUNNER_REGISTRY="127.0.0.1:5000",
        RUNNER_BACKEND="kubernetes",
        RUNNER_STORE_SECRET="runner-store",
        KUBECONFIG=admin,
        KUBECACHEDIR=str(scratch / "kubecache"),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    import boto3

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
    env = dict(os.environ)
    loaded = load_manifest(context / "job.yaml")
    n, threads = args.jobs, args.threads

    agent = NodeAgent.scale(api, state / "pki", duration=lambda pod: args.duration)
    specs = [NodeSpec(f"scale-{tag}-{index}", gpus=args.gpus) for index in range(1, args.nodes + 1)]
    try:
        agent.start(specs)
        print(
            f"real control plane ({cluster_env.get('RUNNER_KUBE_API', '')}), node agent scale mode: "
            f"{args.nodes} nodes x {args.gpus} GPUs; {n} one-GPU jobs of {args.duration:g} s; "
            f"{threads} submit threads; kubectl create -f {args.batch} Jobs (and their ConfigMaps) a batch"
        )
        real_submission_and_statuses(args, loaded, env, kubectl=kubectl, ours=ours, theirs_ns=theirs_ns)
        real_listing(args, loaded, env, kubectl=kubectl, ours=ours, scratch=scratch)
    finally:
        agent.close()
        for namespace in (ours, theirs_ns):
            core.delete_namespace(namespace, _preload_content=False)
        moto.stop()


def rendered_batches(
    loaded: LoadedManifest, count: int, batch: int, namespace: str, suspend: bool
) -> list[str]:
    """count runs' ConfigMaps and Jobs as runner renders them, batch Jobs to a kubectl create -f."""
    texts, objects = [], []
    image = "127.0.0.1:5000/runner/scale:bench"
    for index in range(count):
        rendered = render_job(
            loaded.manifest,
            run_id=new_run_id("scale"),
            image=image,
            store_url="s3://bench/runs",
            namespace=namespace,
        )
        for obj in rendered:
            if obj["kind"] == "Job" and suspend:
                obj["spec"]["suspend"] = True
        objects += rendered
        if len(objects) >= 2 * batch or index == count - 1:
            texts.append(to_yaml(objects))
            objects = []
    return texts


def kubectl_create(kubectl: str, env: dict[str, str], texts: list[str]) -> float:
    began = time.perf_counter()
    for text in texts:
        subprocess.run(
            [kubectl, "create", "-f", "-"], input=text, text=True, env=env, check=True, capture_output=True
        )
    return time.perf_counter() - began


def real_submission_and_statuses(
    args: argparse.Namespace,
    loaded: LoadedManifest,
    env: dict[str, str],
    *,
    kubectl: str,
    ours: str,
    theirs_ns: str,
) -> None:
    n, threads = args.jobs, args.threads
    texts = rendered_batches(loaded, n, args.batch, theirs_ns, suspend=True)
    before = histogram(kubectl, env)
    k_seconds = kubectl_create(kubectl, env, texts)
    after_k = histogram(kubectl, env)

    began = time.perf_counter()
    submit_all(loaded, 1, 1)  # builds and pushes the job image (once)
    print(f"first submission (image build and push included): {time.perf_counter() - began:.1f} s")
    before_r = histogram(kubectl, env)
    began = time.perf_counter()
    submit_all(loaded, n - 1, threads)
    r_seconds = time.perf_counter() - began
    submitted = time.perf_counter()
    after_r = histogram(kubectl, env)

    creates = [("POST", "batch", "jobs"), ("POST", "", "configmaps")]
    print("\n--- submission (the real API server's own latency histogram) ---")
    row("", "runner (RunService)", "", "kubectl create -f")
    row(
        "jobs/s",
        f"{(n - 1) / r_seconds:8.1f}",
        "",
        f"{n / k_seconds:8.1f}",
        (n - 1) / r_seconds / (n / k_seconds),
    )
    row("wall", f"{r_seconds:8.1f} s", "", f"{k_seconds:8.1f} s")
    row(
        "POST jobs+configmaps p50 / p99",
        latency(delta(after_r, before_r, creates)),
        "",
        latency(delta(after_k, before, creates)),
    )
    row("all mutating p50 / p99", latency(delta(after_r, before_r)), "", latency(delta(after_k, before)))
    print("  (all mutating: every client's writes in the window, the controllers' and node agent's included)")

    service = RunService(load_settings())
    polls, poll_seconds = 0, []
    before_s = histogram(kubectl, env)
    while True:
        began = time.perf_counter()
        listed = service.list_runs(limit=n)
        poll_seconds.append(time.perf_counter() - began)
        polls += 1
        if args.live and all(record.state is RunState.RUNNING for record in listed):
            break  # --live: list while every run is running
        if not any(not record.state.terminal for record in listed):
            break
        if time.perf_counter() - submitted > args.status_timeout:
            print(f"gave up waiting after {args.status_timeout:g} s")
            break
        time.sleep(2)
    known = time.perf_counter() - submitted
    after_s = histogram(kubectl, env)
    states: dict[str, int] = {}
    for record in listed:
        states[record.state.value] = states.get(record.state.value, 0) + 1
    print("\n--- statuses ---")
    print(
        f"every status known {known:.1f} s after the last submission ({polls} polls of runner's bulk "
        "refresh, "
        f"{statistics.median(poll_seconds):.2f} s median, {max(poll_seconds):.2f} s max); states: {states}"
    )
    print(f"  mutating p50 / p99 while the cluster ran them: {latency(delta(after_s, before_s))}")
    worst = max(
        (
            (quantile(0.99, delta(after_s, before_s, [key])), key)
            for key in after_s
            if delta(after_s, before_s, [key]).get(float("inf"), 0) >= 20
        ),
        default=(float("nan"), ("", "", "")),
    )
    print(f"  worst (verb, group, resource) p99 with >= 20 requests: {worst[1]} {worst[0] * 1000:.1f} ms")


def resident_name(name: str) -> str:
    return name.replace("RUNNER_RESIDENT=0", "resident (default)")


def real_listing(
    args: argparse.Namespace,
    loaded: LoadedManifest,
    env: dict[str, str],
    *,
    kubectl: str,
    ours: str,
    scratch: Path,
) -> None:
    runner_cli = [sys.executable, "-m", "runner.cli.main"]
    have = args.jobs
    for count in sorted(int(item) for item in args.list_at.split(",") if item):
        if count > have:
            added = kubectl_create(
                kubectl, env, rendered_batches(loaded, count - have, args.batch, ours, suspend=True)
            )
            print(f"\n(added {count - have} suspended runner Jobs with kubectl create -f in {added:.1f} s)")
            have = count
        print(f"\n--- listing at {count} Jobs (the real CLIs, process start-up included; best of 3) ---")
        theirs, lines = min(cli([kubectl, "get", "jobs", "-n", ours], env) for _ in range(3))
        fresh_home = {**env, "RUNNER_HOME": str(scratch / f"fresh-{count}")}
        cases = [
            (
                "list --cluster, fresh home (adopts), RUNNER_RESIDENT=0",
                fresh_home,
                ["--limit", str(count)],
                1,
            ),
            ("list --cluster, all rows, RUNNER_RESIDENT=0", env, ["--limit", str(count)], 3),
            ("list --cluster (default 50 rows), RUNNER_RESIDENT=0", env, [], 3),
        ]
        with resident_server(env) as served:
            resident_fresh = {**fresh_home, **served, "RUNNER_HOME": f"{fresh_home['RUNNER_HOME']}-resident"}
            resident_cases = [
                (resident_name(cases[0][0]), resident_fresh, cases[0][2], cases[0][3]),
                *(
                    (resident_name(name), {**case_env, **served}, extra, tries)
                    for name, case_env, extra, tries in cases[1:]
                ),
            ]
            for command, (name, case_env, extra, tries) in [
                *((runner_cli, case) for case in cases),
                *((ENTRY, case) for case in resident_cases),
            ]:
                seconds, count_lines = min(
                    cli([*command, "list", "--cluster", "-n", ours, *extra], case_env) for _ in range(tries)
                )
                row(
                    name,
                    f"{seconds * 1000:8.0f} ms, {count_lines} lines",
                    "kubectl get jobs",
                    f"{theirs * 1000:8.0f} ms, {lines} lines",
                    seconds / theirs,
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="jobs per kubectl create -f")
    parser.add_argument("--real", action="store_true", help="against scripts/cluster.sh's control plane")
    parser.add_argument("--duration", type=float, default=10.0, help="--real: seconds each pod runs")
    parser.add_argument(
        "--list-at", default="", help="--real: Job counts to list at (default: --jobs), e.g. 2000,10000"
    )
    parser.add_argument(
        "--status-timeout", type=float, default=900.0, help="--real: most seconds to wait for statuses"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="--real: list while every run is still running (give nodes x gpus >= jobs and a long "
        "--duration), not once all have finished",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.real:
            args.list_at = args.list_at or str(args.jobs)
            run_real(args, Path(scratch))
        else:
            run(args, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
