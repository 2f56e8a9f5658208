"""The simulated job controller and kubelet: what the runner reads from Jobs and pods, produced as a real
cluster produces it."""

from __future__ import annotations

from datetime import timedelta

from runner.backends.kubernetes.pure.status import container_problem, job_outcome, pod_disruption
from runner.records import RunState
from tests.support.apiserver import resources
from tests.support.apiserver.store import parse_timestamp
from tests.support.sim import scale
from tests.support.sim.api import condition
from tests.support.sim.builders import gpu_job
from tests.support.sim.clock import EPOCH
from tests.support.sim.fixtures import Cluster


def job(cluster: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    return cluster.server.get("jobs", name)


def conditions(obj: dict) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(c["type"], c["status"], c.get("reason", "")) for c in obj["status"].get("conditions") or []]


def test_a_job_runs_to_completion(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("train", seconds=90))
    cluster.sim.settle()
    [pod] = cluster.sim.pods_of("train")
    labels = pod["metadata"]["labels"]
    uid = job(cluster, "train")["metadata"]["uid"]
    assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "train"
    assert labels["batch.kubernetes.io/controller-uid"] == labels["controller-uid"] == uid
    assert pod["metadata"]["ownerReferences"][0] | {"uid": uid} == pod["metadata"]["ownerReferences"][0]
    assert pod["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert pod["status"]["phase"] == "Running"
    status = job(cluster, "train")["status"]
    assert (status["active"], status["ready"], status["startTime"]) == (1, 1, "2025-06-02T00:00:00Z")

    cluster.sim.advance(90)

    done = job(cluster, "train")
    assert conditions(done) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert done["status"]["succeeded"] == 1 and "active" not in done["status"]
    assert done["status"]["completionTime"] == "2025-06-02T00:01:30Z"
    assert job_outcome(done["status"]) == (RunState.SUCCEEDED, "succeeded")
    [pod] = cluster.sim.pods_of("train")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], terminated["exitCode"], terminated["reason"]) == (
        "Succeeded",
        0,
        "Completed",
    )
    assert "finalizers" not in pod["metadata"]
    log = cluster.server.store.log_lines(cluster.namespace, pod["metadata"]["name"], "job")
    assert [line.text.split(" ", 2)[2] for line in log] == [
        "running on gpu-node-1 for 90s\n",
        "exiting with code 0\n",
    ]


def test_failed_pods_are_retried_with_exponential_backoff(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("flaky", seconds=5, exit_code=1, backoffLimit=3))

    cluster.sim.run_until(lambda: job_outcome(job(cluster, "flaky")["status"]) is not None, within=3600)

    pods = cluster.sim.pods_of("flaky")
    starts = [parse_timestamp(p["status"]["startTime"]) - EPOCH for p in pods]
    # each pod runs 5s, then the next waits 10s, 20s, 40s
    assert starts == [timedelta(seconds=s) for s in (0, 15, 40, 85)]
    status = job(cluster, "flaky")["status"]
    assert status["failed"] == 4
    assert conditions(job(cluster, "flaky"))[-2:] == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert job_outcome(status) == (RunState.FAILED, "failed after its retries (backoffLimit reached)")


def test_an_unretryable_exit_code_fails_the_job_at_once(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("typo", seconds=1, exit_code=127, backoffLimit=5))
    cluster.sim.advance(1)

    assert len(cluster.sim.pods_of("typo")) == 1
    status = job(cluster, "typo")["status"]
    failed = condition(job(cluster, "typo"), "Failed") or {}
    assert failed["reason"] == "PodFailurePolicy"
    pod = cluster.sim.pods_of("typo")[0]["metadata"]["name"]
    assert failed["message"] == (
        f"Container job for pod {cluster.namespace}/{pod} failed with exit code 127 matching FailJob rule "
        "at index 1"
    )
    assert job_outcome(status)[0] is RunState.FAILED  # type: ignore[index]


def test_pods_of_a_lost_node_are_retried_without_counting(cluster: Cluster) -> None:
    cluster.sim.add_nodes(2)
    cluster.server.create(gpu_job("survivor", seconds=1000, backoffLimit=0))
    cluster.sim.settle()
    [first] = cluster.sim.pods_of("survivor")
    cluster.sim.lose_node(first["spec"]["nodeName"])
    cluster.sim.advance(299)
    assert cluster.sim.pods_of("survivor")[0]["status"]["phase"] == "Running"
    assert condition(cluster.sim.pods_of("survivor")[0], "Ready")["status"] == "False"  # type: ignore[index]

    cluster.sim.advance(1)

    evicted = [
        p for p in cluster.sim.pods_of("survivor") if p["metadata"]["name"] == first["metadata"]["name"]
    ]
    assert evicted == []  # counted (as ignored), released, gone
    [second] = cluster.sim.pods_of("survivor")
    assert second["spec"]["nodeName"] != first["spec"]["nodeName"]
    assert second["status"]["phase"] == "Running"
    status = job(cluster, "survivor")["status"]
    assert "failed" not in status and status["active"] == 1
    cluster.sim.advance(1000)
    assert job_outcome(job(cluster, "survivor")["status"]) == (RunState.SUCCEEDED, "succeeded")


def test_an_evicted_pod_says_why(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("watched", seconds=1000))
    cluster.sim.settle()
    seen: list[dict] = []  # type: ignore[type-arg]
    cluster.server.store.listeners.append(
        lambda e: (
            seen.append(e.obj) if e.rt.plural == "pods" and e.obj["status"].get("phase") == "Failed" else None
        )
    )
    cluster.sim.lose_node("gpu-node-1")
    cluster.sim.advance(300)

    assert seen, "the pod went Failed"
    disrupted = condition(seen[0], "DisruptionTarget") or {}
    assert (disrupted["status"], disrupted["reason"]) == ("True", "DeletionByTaintManager")
    assert pod_disruption(seen[0]["status"]) == (
        "disrupted (DeletionByTaintManager): Taint manager: deleting due to NoExecute taint"
    )
    node = cluster.server.get("nodes", "gpu-node-1")
    assert condition(node, "Ready")["status"] == "Unknown"  # type: ignore[index]
    assert {t["key"] for t in node["spec"]["taints"]} >= {"node.kubernetes.io/unreachable"}


def test_the_deadline_stops_the_job(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("slow", seconds=1000, activeDeadlineSeconds=120, backoffLimit=3))
    cluster.sim.advance(119)
    assert condition(job(cluster, "slow"), "Failed") is None

    cluster.sim.advance(1)

    final = job(cluster, "slow")
    assert conditions(final)[-2:] == [
        ("FailureTarget", "True", "DeadlineExceeded"),
        ("Failed", "True", "DeadlineExceeded"),
    ]
    assert job_outcome(final["status"])[0] is RunState.TIMED_OUT  # type: ignore[index]
    assert cluster.sim.pods_of("slow") == []  # deleted, killed (SIGTERM), counted, released
    assert cluster.runtime.containers == {}
    assert final["status"]["failed"] == 1


def test_a_finished_job_goes_after_its_ttl_with_its_pods(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("brief", seconds=10, ttlSecondsAfterFinished=60))
    cluster.sim.advance(69)
    assert cluster.server.find("jobs", "brief") is not None

    cluster.sim.advance(1)

    assert cluster.server.find("jobs", "brief") is None
    assert cluster.server.list_objects("pods") == []


def suspend(cluster: Cluster, name: str, value: bool) -> None:
    jobs = resources.lookup("jobs")
    cluster.server.store.patch(jobs, cluster.namespace, name, "merge", {"spec": {"suspend": value}})
    cluster.sim.settle()


def test_suspend_deletes_the_pod_and_resume_starts_afresh(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("paused", seconds=100, activeDeadlineSeconds=300))
    cluster.sim.advance(50)
    suspend(cluster, "paused", True)
    suspended = job(cluster, "paused")
    assert ("Suspended", "True", "JobSuspended") in conditions(suspended)
    assert "active" not in suspended["status"]
    assert cluster.sim.pods_of("paused") == []
    cluster.sim.advance(1000)  # no deadline while suspended
    assert condition(job(cluster, "paused"), "Failed") is None

    suspend(cluster, "paused", False)
    resumed = job(cluster, "paused")
    assert ("Suspended", "False", "JobResumed") in conditions(resumed)
    assert resumed["status"]["startTime"] == "2025-06-02T00:17:30Z"
    cluster.sim.advance(100)
    assert job_outcome(job(cluster, "paused")["status"]) == (RunState.SUCCEEDED, "succeeded")
    assert "failed" not in job(cluster, "paused")["status"]


def test_oom_and_image_pull_errors_show_in_container_states(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("oom", seconds=5, annotations={scale.OOM_KILLED: "true"}))
    cluster.server.create(gpu_job("noimage", annotations={scale.START_FAILURE: "ErrImagePull"}))
    cluster.sim.advance(5)

    [oom] = cluster.sim.pods_of("oom")
    state = oom["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (137, "OOMKilled")
    assert container_problem(oom["status"]["containerStatuses"], 16 * 2**30) == (
        "killed: out of memory (limit 16Gi); raise spec.resources.memory"
    )
    [pulling] = cluster.sim.pods_of("noimage")
    assert pulling["status"]["phase"] == "Pending"
    waiting = pulling["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert (container_problem(pulling["status"]["containerStatuses"]) or "").startswith(
        "image tensorflow/tensorflow:2.21.0-gpu cannot be pulled: rpc error"
    )


def test_a_failed_container_leaves_its_log_tail_as_message(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    body = gpu_job("crash", seconds=3, exit_code=2)
    body["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    cluster.server.create(body)
    cluster.sim.advance(3)
    [pod] = cluster.sim.pods_of("crash")
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message.endswith("exiting with code 2\n")


def test_deleting_a_job_in_the_foreground_kills_its_pod_first(cluster: Cluster) -> None:
    cluster.sim.add_nodes(1)
    cluster.server.create(gpu_job("cancelled", seconds=1000))
    cluster.sim.settle()
    cluster.server.delete("jobs", "cancelled", propagation="Foreground")
    cluster.sim.settle()

    assert cluster.server.find("jobs", "cancelled") is None
    assert cluster.server.list_objects("pods") == []
    assert cluster.runtime.containers == {}
