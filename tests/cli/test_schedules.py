"""`runner schedule ...` and `runner scheduler` on this machine, through the real `runner` command.

The service and the scheduler loop have unit tests on a fake clock (tests/service/schedules/); here the
commands are run as a user runs them: what they print, their exit codes, and that a scheduled run is an
ordinary run (`runner status` shows it, with the runner.dev/schedule label). The last test is the one
true end to end: two `runner scheduler` processes on one home, a schedule due every minute, a real minute.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import (
    Result,
    process_exists,
    runner_command,
    status_of,
    wait_for,
    wait_for_state,
)

Runner = Callable[..., Result]
MakeJob = Callable[..., Path]
SCHEDULE_LABEL = "runner.dev/schedule"


def ok(result: Result) -> Result:
    assert result.code == 0, result.output
    return result


def listed(runner: Runner) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = json.loads(ok(runner("schedule", "list", "-o", "json")).stdout)
    return documents


def one(runner: Runner, name: str) -> dict[str, Any]:
    (document,) = [found for found in listed(runner) if found["name"] == name]
    return document


def table_row(output: str, name: str) -> list[str]:
    """The cells of a table's row for name (cells are separated by at least two spaces)."""
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row for {name} in:\n{output}")


# ------------------------------------------------------------------------------------------------ apply


@pytest.mark.usefixtures("home")
def test_apply_creates_then_leaves_alone_then_updates_after_an_edit(runner: Runner, job: MakeJob) -> None:
    path = job("nightly", schedule={"cron": "30 2 * * *", "timeZone": "Asia/Seoul"})

    created = ok(runner("schedule", "apply", str(path)))
    # The next run in the schedule's own zone, as its owner reads the cron.
    assert re.fullmatch(
        r"schedule/nightly created \(process; next run \d{4}-\d\d-\d\d 02:30 KST\)\n", created.stdout
    ), created.stdout
    assert "runner scheduler starts its runs" in created.stderr

    again = ok(runner("schedule", "apply", str(path)))
    assert re.fullmatch(r"schedule/nightly unchanged \(process; next run .* 02:30 KST\)\n", again.stdout)
    assert "runner scheduler" not in again.stderr

    path.write_text(path.read_text().replace("30 2 * * *", "45 3 * * *").replace("Asia/Seoul", "UTC"))
    updated = ok(runner("schedule", "apply", str(path)))
    assert re.fullmatch(r"schedule/nightly updated \(process; next run .* 03:45 UTC\)\n", updated.stdout)

    (document,) = listed(runner)
    assert (document["cron"], document["timeZone"], document["manifest"]) == ("45 3 * * *", "UTC", str(path))
    assert document["nextRun"].endswith("T03:45:00Z")


@pytest.mark.usefixtures("home")
def test_a_manifest_without_a_schedule_is_refused_with_the_hint(runner: Runner, job: MakeJob) -> None:
    path = job("once")
    result = runner("schedule", "apply", str(path))
    assert result.code == 2, result.output
    assert f"error: {path}: the manifest has no spec.schedule" in result.stderr
    assert "hint: add one, e.g. `schedule: {cron:" in result.stderr
    assert "Traceback" not in result.output
    assert listed(runner) == []


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dry-run"], "--dry-run and --namespace apply to --backend kubernetes only"),
        (["-n", "ml"], "--dry-run and --namespace apply to --backend kubernetes only"),
        (["--backend", "nowhere"], "'nowhere' is not one of"),
    ],
)
def test_options_for_clusters_only_are_usage_errors_here(
    runner: Runner, job: MakeJob, extra: list[str], message: str
) -> None:
    path = job("nightly", schedule={"cron": "0 2 * * *"})
    result = runner("schedule", "apply", str(path), *extra)
    assert result.code == 2, result.output
    assert message in result.stderr
    assert listed(runner) == []


@pytest.mark.usefixtures("home")
def test_apply_of_a_missing_file_is_a_user_error(runner: Runner, tmp_path: Path) -> None:
    result = runner("schedule", "apply", str(tmp_path / "nope.yaml"))
    assert result.code == 2, result.output
    assert "no such file" in result.stderr and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------- list


@pytest.mark.usefixtures("home")
def test_list_in_every_format(runner: Runner, job: MakeJob) -> None:
    empty = ok(runner("schedule", "list"))
    assert empty.stdout == ""
    assert "No schedules yet. Try: runner schedule apply" in empty.stderr
    assert ok(runner("schedule", "list", "-o", "name")).stdout == ""

    for name, cron, zone in (("zeta", "0 2 * * *", "Europe/Berlin"), ("alpha", "*/15 * * * *", "UTC")):
        ok(runner("schedule", "apply", str(job(name, schedule={"cron": cron, "timeZone": zone}))))

    table = ok(runner("schedule", "list")).stdout
    lines = table.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "NAME", "BACKEND", "SCHEDULE", "TIMEZONE", "PAUSED", "NEXT RUN", "LAST RUN", "RESULT",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "zeta"]
    zeta = table_row(table, "zeta")
    assert zeta[:5] == ["zeta", "process", "0 2 * * *", "Europe/Berlin", "no"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 02:00 CES?T", zeta[5]), zeta
    assert zeta[6:] == ["-", "-"]

    documents = listed(runner)
    assert [document["name"] for document in documents] == ["alpha", "zeta"]
    assert documents[1] | {"nextRun": None, "manifest": None} == {
        "name": "zeta",
        "backend": "process",
        "namespace": None,  # the keys of a cluster's schedules: null here
        "job": "zeta",
        "cron": "0 2 * * *",
        "timeZone": "Europe/Berlin",
        "concurrency": "Forbid",
        "paused": False,
        "suspended": False,
        "manifest": None,
        "image": None,
        "nextRun": None,
        "lastRun": None,
        "lastResult": None,
        "lastSlot": None,
        "lastOutcome": None,
        "lastScheduleTime": None,
        "lastSuccessfulTime": None,
        "active": None,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT(00|01):00:00Z", documents[1]["nextRun"])  # 02:00 in Berlin
    assert yaml.safe_load(ok(runner("schedule", "list", "-o", "yaml")).stdout) == documents
    assert ok(runner("schedule", "list", "-o", "name")).stdout == "alpha\nzeta\n"


# -------------------------------------------------------------------------------------- pause and resume


@pytest.mark.usefixtures("home")
def test_pause_and_resume_show_in_the_list(runner: Runner, job: MakeJob) -> None:
    for name in ("a", "b"):
        ok(runner("schedule", "apply", str(job(name, schedule={"cron": "0 2 * * *"}))))

    paused = ok(runner("schedule", "pause", "a", "b"))
    assert paused.stdout == "schedule/a paused\nschedule/b paused\n"
    assert ok(runner("schedule", "pause", "a")).stdout == "schedule/a paused\n"  # twice is fine
    assert table_row(ok(runner("schedule", "list")).stdout, "a")[4:6] == ["yes", "-"]
    assert [(d["paused"], d["nextRun"]) for d in listed(runner)] == [(True, None), (True, None)]

    assert ok(runner("schedule", "resume", "a")).stdout == "schedule/a resumed\n"
    a, b = listed(runner)
    assert (a["paused"], b["paused"]) == (False, True)
    assert a["nextRun"] is not None and a["nextRun"].endswith("T02:00:00Z")
    assert table_row(ok(runner("schedule", "list")).stdout, "a")[4] == "no"


@pytest.mark.usefixtures("home")
def test_a_schedule_suspended_by_its_manifest_cannot_be_resumed_by_hand(runner: Runner, job: MakeJob) -> None:
    path = job("held", schedule={"cron": "0 2 * * *", "suspend": True})
    applied = ok(runner("schedule", "apply", str(path)))
    assert "schedule/held created (process; next run -)" in applied.stdout
    assert one(runner, "held")["suspended"] is True

    result = runner("schedule", "resume", "held")
    assert result.code == 2, result.output
    assert (
        "error: schedule 'held' is suspended by its manifest (spec.schedule.suspend: true)" in result.stderr
    )
    assert f"hint: set suspend to false and apply {path} again" in result.stderr
    assert "Traceback" not in result.output

    path.write_text(path.read_text().replace("suspend: true", "suspend: false"))
    ok(runner("schedule", "apply", str(path)))
    assert one(runner, "held")["nextRun"] is not None


# --------------------------------------------------------------------------- trigger, history, delete


@pytest.mark.usefixtures("home")
def test_trigger_starts_a_labelled_run_that_history_shows_and_delete_leaves(
    runner: Runner, job: MakeJob
) -> None:
    path = job("nightly", command=["sh", "-c", "echo from the schedule"], schedule={"cron": "0 2 * * *"})
    ok(runner("schedule", "apply", str(path)))
    ok(runner("schedule", "pause", "nightly"))  # a trigger is asked for explicitly: it runs anyway

    triggered = ok(runner("schedule", "trigger", "nightly"))
    run = triggered.stdout.strip()
    assert re.fullmatch(r"nightly-[a-z0-9]{6}", run), triggered.stdout

    status = wait_for_state(run, "succeeded", "failed")
    assert status["state"] == "succeeded", status
    assert status["labels"][SCHEDULE_LABEL] == "nightly"
    assert "from the schedule" in ok(runner("logs", run)).stdout

    history = ok(runner("schedule", "history", "nightly")).stdout
    assert table_row(history, history.splitlines()[1].split()[0])[1:4] == ["trigger", "started", run]
    (slot,) = json.loads(ok(runner("schedule", "history", "nightly", "-o", "json")).stdout)
    assert (slot["outcome"], slot["run"], slot["manual"]) == ("started", run, True)

    document = one(runner, "nightly")
    assert (document["lastRun"], document["lastResult"], document["paused"]) == (run, "succeeded", True)
    row = table_row(ok(runner("schedule", "list")).stdout, "nightly")
    assert row[6].startswith(f"{run} (") and row[7] == "succeeded"

    deleted = ok(runner("schedule", "delete", "nightly"))
    assert deleted.stdout == "schedule/nightly deleted\n"
    assert listed(runner) == []
    assert status_of(run)["state"] == "succeeded"  # its run stays
    assert run in ok(runner("list", "-o", "name")).stdout


@pytest.mark.usefixtures("home")
def test_history_of_a_schedule_that_never_ran(runner: Runner, job: MakeJob) -> None:
    ok(runner("schedule", "apply", str(job("quiet", schedule={"cron": "0 2 * * *"}))))
    result = ok(runner("schedule", "history", "quiet"))
    assert result.stdout == "" and "schedule quiet has not run yet" in result.stderr
    assert json.loads(ok(runner("schedule", "history", "quiet", "-o", "json")).stdout) == []


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize(
    "command",
    [
        ["pause", "ghost"],
        ["resume", "ghost"],
        ["trigger", "ghost"],
        ["delete", "ghost"],
        ["history", "ghost"],
    ],
)
def test_an_unknown_schedule_is_not_found_with_the_hint(runner: Runner, command: list[str]) -> None:
    result = runner("schedule", *command)
    assert result.code == 1, result.output
    assert (
        result.stderr
        == "error: schedule 'ghost' not found\nhint: `runner schedule list` shows the schedules\n"
    )


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize("verb", ["pause", "delete"])
def test_an_unknown_name_among_several_does_not_stop_the_others(
    runner: Runner, job: MakeJob, verb: str
) -> None:
    """As kubectl does: every name is handled, each unknown one reported, and the exit code says so."""
    for name in ("a", "b"):
        ok(runner("schedule", "apply", str(job(name, schedule={"cron": "0 2 * * *"}))))
    result = runner("schedule", verb, "a", "ghost", "b")
    assert result.code == 1, result.output
    done = "paused" if verb == "pause" else "deleted"
    assert result.stdout == f"schedule/a {done}\nschedule/b {done}\n"
    assert "error: schedule 'ghost' not found" in result.stderr
    if verb == "pause":
        assert [document["paused"] for document in listed(runner)] == [True, True]
    else:
        assert listed(runner) == []


# -------------------------------------------------------------------- runner scheduler, end to end


@pytest.fixture
def schedulers(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """`runner scheduler` processes the test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def start_scheduler(log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:
        return subprocess.Popen(
            runner_command("scheduler"), stdout=out, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
        )


def test_two_schedulers_one_home_run_a_due_slot_once_and_stop_without_killing_it(
    runner: Runner, job: MakeJob, home: Path, tmp_path: Path, schedulers: list[subprocess.Popen[str]]
) -> None:
    gate = tmp_path / "gate"
    path = job(
        "minutely",
        # The run holds until the test opens the gate: it is still going when the schedulers stop.
        command=["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo ran"],
        schedule={"cron": "* * * * *", "timeZone": "UTC"},
    )
    ok(runner("schedule", "apply", str(path)))
    logs = [tmp_path / "scheduler-1.log", tmp_path / "scheduler-2.log"]
    schedulers.extend(start_scheduler(log) for log in logs)

    def said() -> list[str]:
        return [log.read_text() for log in logs]

    wait_for(lambda: all("scheduler: active as" in t or "scheduler: standing by" in t for t in said()), 60)
    active = [i for i, text in enumerate(said()) if "scheduler: active as" in text]
    standby = [i for i, text in enumerate(said()) if "scheduler: standing by" in text]
    assert len(active) == 1 and len(standby) == 1, said()
    (leader,), (follower,) = active, standby

    # The next minute's slot: at most 60 s away, plus the scheduler's tick.
    def scheduled_runs() -> list[dict[str, Any]]:
        runs = json.loads(ok(runner("list", "-o", "json")).stdout)
        return [run for run in runs if run["labels"].get(SCHEDULE_LABEL) == "minutely"]

    (run,) = wait_for(scheduled_runs, 75, "the scheduled run")
    wait_for_state(run["id"], "running", timeout=30)
    text = said()[leader]
    assert re.search(rf"minutely slot \d{{4}}-\d\d-\d\dT\d\d:\d\dZ: started {run['id']}", text), text
    assert "started" not in said()[follower], said()[follower]

    # Stop the standby first, then the active one (so the standby cannot take over in between).
    for index in (follower, leader):
        schedulers[index].send_signal(signal.SIGTERM)
    codes = [process.wait(timeout=30) for process in schedulers]
    assert codes == [0, 0], said()
    assert all(text.rstrip().endswith("scheduler: stopped") for text in said()), said()

    # Its run is a detached supervisor: stopping the schedulers did not stop it.
    supervisor = status_of(run["id"])
    assert supervisor["state"] == "running", supervisor
    assert (home / "runs.db").exists()
    gate.touch()
    finished = wait_for_state(run["id"], "succeeded", "failed", "cancelled", "lost", timeout=60)
    assert finished["state"] == "succeeded", finished

    # Exactly one run, and its slot recorded once, as started (a later minute that came while it held
    # would be skipped: concurrency Forbid).
    assert [found["id"] for found in scheduled_runs()] == [run["id"]]
    history = json.loads(ok(runner("schedule", "history", "minutely", "-o", "json")).stdout)
    started = [(slot["run"], slot["manual"]) for slot in history if slot["outcome"] == "started"]
    assert started == [(run["id"], False)], history
    assert {slot["outcome"] for slot in history} <= {"started", "skipped"}, history
    assert len({slot["slot"] for slot in history}) == len(history), history
    assert not any(process_exists(p.pid) for p in schedulers)
