"""Multi-worker runs (spec.workers: 2) on the real control plane: an Indexed Job whose pods find each
other by name through the run's headless Service (the node agent's pods of a subdomain share a Docker
network where those names resolve, as cluster DNS gives them), all or nothing on failure, and nothing
left behind by a cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import status_of
from tests.realcluster.helpers import ON_GPU_NODES, Job, Runner, condition, job_finished, submit_detached
from tests.support.realcluster import RealKube, wait_until

pytestmark = ON_GPU_NODES

# Each worker reads TF_CONFIG, listens on its own address's port, connects to the other worker by
# name, and writes what it heard into its outputs.
WORKER = r"""
import json, os, socket, sys, time
config = json.loads(os.environ["TF_CONFIG"])
me = config["task"]["index"]
hosts = config["cluster"]["worker"]
port = int(hosts[me].rpartition(":")[2])
print(f"worker {me} of {len(hosts)} at {hosts[me]}", flush=True)
if os.environ.get("CRASH") == str(me):
    print(f"worker {me} crashes", flush=True)
    sys.exit(3)
server = socket.create_server(("0.0.0.0", port))
peer = hosts[1 - me]
host, _, peer_port = peer.rpartition(":")
for _ in range(int(os.environ.get("TRIES", "120"))):
    try:
        with socket.create_connection((host, int(peer_port)), timeout=2) as out:
            out.sendall(f"hello from worker {me}".encode())
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit(f"worker {me}: no answer from {peer}")
server.settimeout(60)
connection, _ = server.accept()
heard = connection.recv(100).decode()
print(f"worker {me} heard: {heard}", flush=True)
with open(os.path.join(os.environ["RUNNER_OUTPUTS"], "heard.txt"), "w") as file:
    file.write(heard)
"""


def two_workers(job: Job, image: str, name: str, **spec: Any) -> Path:
    spec.setdefault("resources", {"gpu": 1, "gpuType": "H100"})
    path = job(name, image={"base": image}, command=["python", "worker.py"], workers=2, **spec)
    (path.parent / "worker.py").write_text(WORKER)
    return path


def test_two_workers_find_each_other_by_name_and_the_run_collects_both(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube, real_store: str, *, s3: Any
) -> None:
    run = submit_detached(two_workers(job, python_base_image, "pair"))
    found = job_finished(real_kube, run, timeout=180)
    assert condition(found, "Complete"), json.dumps(found.get("status"), indent=1)
    assert found["spec"]["completionMode"] == "Indexed" and found["status"]["succeeded"] == 2
    table = real_kube.kubectl("get", "jobs")
    assert run in table.stdout and "Complete" in table.stdout, table.stdout
    pods = real_kube.pods_of(run)
    assert len(pods) == 2
    nodes = {
        node["metadata"]["name"]: node for node in (real_kube.get(real_kube.core.list_node) or {})["items"]
    }
    for pod in pods:  # both on GPU nodes, as the manifest asks
        labels = nodes[pod["spec"]["nodeName"]]["metadata"]["labels"]
        assert "H100" in labels.get("nvidia.com/gpu.product", ""), labels

    last: dict[str, Any] = {}

    def succeeded() -> dict[str, Any] | None:
        last.update(status_of(run))
        return dict(last) if last["state"] == "succeeded" else None

    try:
        status = wait_until(succeeded, 120, "the run's end")
    except AssertionError as error:  # say where the run stood, beside the Job's Complete
        raise AssertionError(f"{error}; the run's last status: {json.dumps(last, indent=1)}") from None
    assert status["attempts"] == 1
    prefix = f"runs/pair/{run}/"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=real_store, Prefix=prefix)["Contents"]}
    assert {f"{prefix}run.json", f"{prefix}outputs/heard.txt", f"{prefix}workers/1/outputs/heard.txt"} <= keys
    heard = s3.get_object(Bucket=real_store, Key=f"{prefix}workers/1/outputs/heard.txt")["Body"].read()
    assert heard == b"hello from worker 0"
    logs = runner("logs", run)
    assert logs.code == 0, logs.output
    assert "worker 0 heard: hello from worker 1" in logs.stdout, logs.stdout
    assert "worker 1 heard: hello from worker 0" in logs.stdout, logs.stdout


def test_a_crashing_worker_fails_the_run_and_stops_the_other(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube, real_store: str, *, s3: Any
) -> None:
    # worker 1 exits 3 at once; worker 0 waits for it (ten minutes) unless it is stopped
    path = two_workers(job, python_base_image, "crash", env={"CRASH": "1", "TRIES": "1200"})
    run = submit_detached(path)
    found = job_finished(real_kube, run, timeout=120)
    failed = condition(found, "Failed")
    assert failed is not None and failed["reason"] == "PodFailurePolicy", found.get("status")
    wait_until(
        lambda: (
            all(
                (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")
                for pod in real_kube.pods_of(run)
            )
            or not real_kube.pods_of(run)
        ),
        120,
        "the other worker to be stopped",
    )
    status = wait_until(
        lambda: doc if (doc := status_of(run))["state"] == "failed" else None, 60, "the run to fail"
    )
    assert "pod failure policy" in status["message"], status
    logs = runner("logs", run)
    assert "worker 1 crashes" in logs.stdout, logs.output
    # The Job controller deleted worker 0's pod (its log with it); its agent, stopped by SIGTERM,
    # collected that log into the store, as worker 1's did.
    prefix = f"runs/crash/{run}/"

    def collected() -> dict[str, str] | None:
        keys = {
            item["Key"] for item in s3.list_objects_v2(Bucket=real_store, Prefix=prefix).get("Contents", [])
        }
        wanted = [f"{prefix}logs/attempt-1.log", f"{prefix}workers/1/logs/attempt-1.log"]
        if not set(wanted) <= keys:
            return None
        return {key: s3.get_object(Bucket=real_store, Key=key)["Body"].read().decode() for key in wanted}

    stored = wait_until(collected, 60, "both workers' logs in the store")
    assert "worker 0 of 2" in stored[f"{prefix}logs/attempt-1.log"]
    assert "worker 1 crashes" in stored[f"{prefix}workers/1/logs/attempt-1.log"]


def test_cancel_of_two_workers_leaves_no_pod_service_or_config_map(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = two_workers(job, python_base_image, "stopped", env={"CRASH": "none", "TRIES": "1200"})
    run = submit_detached(path)
    service = wait_until(
        lambda: real_kube.get(real_kube.core.read_namespaced_service, run, real_kube.namespace),
        30,
        "the Service",
    )
    owner = service["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Job", run)
    wait_until(lambda: len(real_kube.pods_of(run)) == 2 or None, 60, "both workers' pods")
    cancelled = runner("cancel", run, timeout=300)
    assert cancelled.code == 0, cancelled.output

    def gone() -> bool | None:
        left = (
            real_kube.job(run),
            real_kube.pods_of(run),
            real_kube.get(real_kube.core.read_namespaced_service, run, real_kube.namespace),
            real_kube.get(real_kube.core.read_namespaced_config_map, run, real_kube.namespace),
        )
        return True if not any(left) else None

    wait_until(gone, 60, "the Job, its pods, its Service and its ConfigMap to be gone")
