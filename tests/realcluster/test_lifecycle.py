"""A run's life outside the runner's hands, against the real controllers: an operator deletes its Job or
suspends it mid-run (kubectl), the TTL controller removes a finished Job (ttlSecondsAfterFinished), and a
CronJob fires on its own (`* * * * *`) under concurrencyPolicy Forbid. runner status says what happened."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import status_of
from tests.realcluster.helpers import (
    ON_GPU_NODES,
    Job,
    Obj,
    Runner,
    condition,
    job_finished,
    small_job,
    submit_detached,
    wait_for_run,
)
from tests.support.realcluster import RealKube, wait_until

pytestmark = ON_GPU_NODES
DELETED = "cancelled: its Job was deleted outside the runner (kubectl delete?)"
SUSPENDED = "suspended (kubectl patch or a queue holds it)"


def running_pods(kube: RealKube, run: str) -> list[Obj]:
    return [pod for pod in kube.pods_of(run) if (pod.get("status") or {}).get("phase") == "Running"]


def test_a_job_deleted_by_an_operator_mid_run_is_reported_deleted(
    job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    run = submit_detached(small_job(job, python_base_image, "deleted", "echo started; sleep 600"))
    wait_for_run(run, "running")
    deleted = real_kube.kubectl("delete", "job", run, "--wait=false")  # kubectl's default: background
    assert deleted.returncode == 0, deleted.stderr
    status = wait_for_run(run, "cancelled", timeout=60)
    assert status["message"] == DELETED, status
    # the garbage collector removes its pod (the node stops the container)
    wait_until(lambda: not real_kube.pods_of(run), 120, "the garbage collector to remove the pod", pause=0.5)


def test_a_job_suspended_by_an_operator_mid_run_is_reported_suspended_and_resumes(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    run = submit_detached(small_job(job, python_base_image, "paused", "echo started; sleep 600"))
    wait_for_run(run, "running")
    (first,) = running_pods(real_kube, run)
    patched = real_kube.kubectl("patch", "job", run, "--type", "merge", "-p", '{"spec":{"suspend":true}}')
    assert patched.returncode == 0, patched.stderr
    # the Job controller stops its pod and says so in a Suspended condition
    suspended = wait_until(lambda: condition(real_kube.job(run) or {}, "Suspended"), 60, "Suspended")
    assert suspended["reason"] == "JobSuspended"
    wait_until(lambda: not real_kube.pods_of(run), 120, "the suspended Job's pod to go", pause=0.5)
    status = wait_until(
        lambda: doc if (doc := status_of(run))["message"] == SUSPENDED else None,
        60,
        "runner to say suspended",
    )
    assert status["state"] == "pending", status  # nothing of it runs while suspended, nor is it over

    resumed = real_kube.kubectl("patch", "job", run, "--type", "merge", "-p", '{"spec":{"suspend":false}}')
    assert resumed.returncode == 0, resumed.stderr
    status = wait_for_run(run, "running", timeout=120)
    (second,) = running_pods(real_kube, run)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert status["message"] == f"running on {second['spec']['nodeName']}"
    cancelled = runner("cancel", run, timeout=300)
    assert cancelled.code == 0, cancelled.output


def create_with_ttl(runner: Runner, kube: RealKube, path: Path, ttl: int) -> str:
    """The run's objects as runner renders them (runner build pushes the image render names), its Job's
    ttlSecondsAfterFinished set to ttl, created with kubectl as an operator would; the run id.

    runner keeps a finished Job for TTL_SECONDS (3 days) and offers no setting: a test cannot wait that."""
    built = runner("build", str(path), timeout=600)
    assert built.code == 0, built.output[-3000:]
    rendered = runner("render", str(path), "--kubernetes")
    assert rendered.code == 0, rendered.output
    objects = list(yaml.safe_load_all(rendered.stdout))
    (job_object,) = [obj for obj in objects if obj["kind"] == "Job"]
    assert job_object["spec"]["ttlSecondsAfterFinished"] == 3 * 86400
    job_object["spec"]["ttlSecondsAfterFinished"] = ttl
    created = kube.kubectl("create", "-f", "-", input=yaml.safe_dump_all(objects))
    assert created.returncode == 0, created.stderr
    run: str = job_object["metadata"]["labels"]["runner.dev/run"]
    return run


def test_a_finished_job_removed_by_its_ttl_stays_as_runner_saw_it_end(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = small_job(job, python_base_image, "brief", "echo short-lived")
    run = create_with_ttl(runner, real_kube, path, ttl=20)
    listed = runner("list", "--cluster")  # adopted: it was created by kubectl, not by this runner
    assert listed.code == 0 and run in listed.stdout, listed.output
    assert wait_for_run(run, "succeeded", timeout=120)["message"] == "succeeded"
    wait_until(lambda: real_kube.job(run) is None, 90, "the TTL controller to delete the Job", pause=0.5)
    wait_until(lambda: not real_kube.pods_of(run), 90, "its pod to go with it", pause=0.5)
    status = status_of(run)
    assert (status["state"], status["message"]) == ("succeeded", "succeeded"), status
    artifacts = runner("artifacts", run)  # what the pod collected outlives the Job
    assert artifacts.code == 0 and "logs/attempt-1.log" in artifacts.stdout, artifacts.output


def test_a_job_its_ttl_removed_before_runner_saw_it_end_is_read_from_the_store(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    path = small_job(job, python_base_image, "unseen", "sleep 5; echo finished unseen")
    run = create_with_ttl(runner, real_kube, path, ttl=1)
    listed = runner("list", "--cluster", "-o", "json")  # adopted while it runs, then not asked again
    assert listed.code == 0, listed.output
    (adopted,) = [item for item in json.loads(listed.stdout) if item["id"] == run]
    assert adopted["state"] in ("pending", "running"), adopted
    wait_until(lambda: real_kube.job(run) is None, 120, "the TTL controller to delete the Job", pause=0.5)
    status = status_of(run)
    assert status["state"] == "succeeded", status


def test_a_run_configmap_goes_with_its_job(job: Job, python_base_image: str, real_kube: RealKube) -> None:
    run = submit_detached(small_job(job, python_base_image, "owned", "echo owned"))
    job_finished(real_kube, run)
    config_map = real_kube.get(real_kube.core.read_namespaced_config_map, run, real_kube.namespace)
    assert config_map is not None
    owners = config_map["metadata"].get("ownerReferences") or []
    assert [(owner["kind"], owner["name"]) for owner in owners] == [("Job", run)], config_map["metadata"]


def schedule_runs(kube: RealKube, name: str) -> list[Obj]:
    listing = kube.get(
        kube.batch.list_namespaced_job, kube.namespace, label_selector=f"runner.dev/schedule={name}"
    )
    return list((listing or {}).get("items") or [])


def test_a_cronjob_fires_every_minute_and_forbid_skips_a_slot_while_its_run_goes_on(
    runner: Runner, job: Job, python_base_image: str, real_kube: RealKube
) -> None:
    """Its first slot comes within a minute; the run sleeps past the next slot, which Forbid skips (the
    CronJob controller's JobAlreadyActive event) rather than start a second run beside it."""
    path = small_job(
        job,
        python_base_image,
        "minutely",
        "echo fired $RUNNER_RUN_ID; sleep 170",
        schedule={"cron": "* * * * *", "concurrency": "Forbid"},
    )
    applied = runner("schedule", "apply", str(path), "--backend", "kubernetes", timeout=600)
    assert applied.code == 0, applied.output[-3000:]
    (first,) = wait_until(lambda: schedule_runs(real_kube, "minutely"), 75, "the first slot's Job", pause=1)
    run = first["metadata"]["name"]
    assert first["metadata"]["annotations"].get("batch.kubernetes.io/cronjob-scheduled-timestamp")
    (owner,) = first["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("CronJob", "minutely")

    # runner finds the run (adopted by its labels) and sees it run
    listed = runner("list", "--cluster")
    assert listed.code == 0 and run in listed.stdout, listed.output
    wait_for_run(run, "running")

    def skipped() -> list[Obj]:
        return [
            event
            for event in real_kube.events(
                **{"involvedObject.name": "minutely", "involvedObject.kind": "CronJob"}
            )
            if event["reason"] == "JobAlreadyActive"
        ]

    (event,) = wait_until(skipped, 75, "the next slot to be skipped (JobAlreadyActive)", pause=1)
    assert "Forbid" in event["message"], event
    assert [item["metadata"]["name"] for item in schedule_runs(real_kube, "minutely")] == [run]
    shown = runner("schedule", "list", "--cluster", "-o", "json")
    assert shown.code == 0, shown.output
    (view,) = json.loads(shown.stdout)
    assert view["concurrency"] == "Forbid"
    assert (view["lastRun"], view["lastResult"], view["active"]) == (run, "running", [run]), view
    assert status_of(run)["state"] == "running"
    deleted = runner("schedule", "delete", "minutely", "--cluster")
    assert deleted.code == 0, deleted.output
