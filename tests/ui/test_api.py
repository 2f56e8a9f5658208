"""The dashboard through FastAPI's test client: real runs on the process backend, a real file:// store."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from runner.records import RunState
from runner.records.schedule_view import ScheduleView
from runner.ui.context import local_schedules
from tests.conftest import run_runner, store_dir, wait_for, wait_for_state, write_job
from tests.ui.conftest import StartTraining, dashboard

HOSTILE = "<script>alert(1)</script>"


def test_the_runs_page_lists_runs_and_filters_them(home: Path, start_training: StartTraining) -> None:
    done = start_training("done", waiting=False)
    wait_for_state(done.run, "succeeded")
    running = start_training("going")
    client = dashboard()
    page = client.get("/")
    assert page.status_code == 200
    assert done.run in page.text and running.run in page.text
    assert running.run not in client.get("/?state=succeeded").text
    assert done.run in client.get("/?state=succeeded").text
    listed = client.get("/api/runs", params={"job": "going"}).json()["runs"]
    assert [(run["id"], run["job"]) for run in listed] == [(running.run, "going")]
    for epoch in (1, 2, 3):
        running.epoch(epoch)
    wait_for_state(running.run, "succeeded")


def test_a_finished_run_shows_its_log_as_text_its_curves_and_artifacts(
    home: Path, finished_training: str
) -> None:
    run = finished_training
    client = dashboard()
    page = client.get(f"/runs/{run}")
    assert page.status_code == 200
    assert HOSTILE not in page.text  # the page holds no job output; the script sets it as text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    log = client.get(f"/api/runs/{run}/log").json()
    assert HOSTILE in log["text"] and log["final"] is True
    training = client.get(f"/api/runs/{run}/metrics").json()["training"]
    assert training["epochs"] == [1, 2, 3]
    assert training["planned"] == 3
    assert training["metrics"]["loss"] == [1.0, 0.5, 1 / 3]
    files = {entry["path"]: entry for entry in client.get(f"/api/runs/{run}/artifacts").json()["files"]}
    model = files["outputs/model.bin"]
    assert {"outputs/telemetry/training.jsonl", "logs/attempt-1.log", "run.json"} <= set(files)
    download = client.get(model["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")
    assert hashlib.sha256(download.content).hexdigest() == model["sha256"]
    assert len(download.content) == model["size"]
    stored = store_dir(home, "done", run) / "outputs" / "model.bin"
    assert download.content == stored.read_bytes()


def test_a_log_served_for_download_is_never_a_page(home: Path, finished_training: str) -> None:
    response = dashboard().get(f"/runs/{finished_training}/files/logs/attempt-1.log")
    assert HOSTILE.encode() in response.content
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_what_does_not_exist_is_said_without_a_traceback(home: Path, finished_training: str) -> None:
    client = dashboard()
    missing = client.get("/api/runs/nosuchrun")
    assert missing.status_code == 404
    assert "nosuchrun" in missing.json()["error"]
    page = client.get("/runs/nosuchrun")
    assert page.status_code == 404 and "Traceback" not in page.text
    assert client.get(f"/runs/{finished_training}/files/outputs/nothing.bin").status_code == 404
    assert client.get(f"/runs/{finished_training}/files/../../etc/passwd").status_code == 404


def test_a_running_run_has_no_artifacts_yet_and_its_curve_grows(
    home: Path, start_training: StartTraining
) -> None:
    training = start_training("growing")
    client = dashboard()
    wait_for_state(training.run, "running")
    assert client.get(f"/api/runs/{training.run}/artifacts").status_code == 404
    training.epoch(1)
    wait_for(lambda: client.get(f"/api/runs/{training.run}/metrics").json()["training"]["epochs"] == [1])
    training.epoch(2)
    wait_for(lambda: client.get(f"/api/runs/{training.run}/metrics").json()["training"]["epochs"] == [1, 2])
    training.epoch(3)
    wait_for_state(training.run, "succeeded")


def test_schedules_show_their_next_run() -> None:
    view = ScheduleView(
        name="nightly",
        backend="process",
        job="nightly",
        cron="0 2 * * *",
        time_zone="Asia/Seoul",
        concurrency="Forbid",
        suspended=False,
        next_run=datetime(2026, 12, 6, 2, 0, tzinfo=ZoneInfo("Asia/Seoul")),
        last_run="nightly-abc123",
        last_result=RunState.SUCCEEDED,
    )
    client = dashboard(schedules=lambda: [view])
    assert "2026-12-06 02:00 KST" in client.get("/schedules").text
    assert client.get("/api/schedules").json()["schedules"][0]["nextRun"] == "2026-12-06 02:00 KST"


def test_a_token_is_asked_of_every_request_when_one_is_set(home: Path) -> None:
    token = "t" * 32
    client = dashboard(token=token)
    assert client.get("/").status_code == 401
    assert client.get("/static/app.js").status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(f"/api/runs?token={token}").status_code == 200  # scripts: no redirect
    first = client.get(f"/?job=x&token={token}", headers={"Accept": "text/html"}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/?job=x"  # the token leaves the address
    assert client.get("/?job=x").status_code == 200  # the cookie carries it from now on


def test_bound_to_loopback_it_answers_only_loopback_host_names(home: Path) -> None:
    client = dashboard(allowed_hosts=["127.0.0.1", "localhost"])
    assert client.get("/api/runs", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/api/runs", headers={"Host": "attacker.example"}).status_code == 400


def test_this_machine_s_schedules_are_listed_with_their_next_run(home: Path, tmp_path: Path) -> None:
    manifest = write_job(
        tmp_path / "nightly", "nightly", schedule={"cron": "0 2 * * *", "timeZone": "Asia/Seoul"}
    )
    applied = run_runner("schedule", "apply", str(manifest))
    assert applied.code == 0, applied.output
    (row,) = dashboard(schedules=local_schedules).get("/api/schedules").json()["schedules"]
    assert (row["name"], row["cron"], row["timeZone"], row["paused"]) == (
        "nightly",
        "0 2 * * *",
        "Asia/Seoul",
        False,
    )
    assert row["nextRun"].endswith("02:00 KST")
