"""LocalSchedules: apply snapshots a manifest; list, pause, resume, trigger and delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from runner.errors import ManifestError, NotFoundError, SubmitError, UserError
from runner.records.schedules import SlotOutcome
from runner.service.schedules.base import ApplyResult
from runner.service.schedules.local import LocalSchedules, snapshot
from runner.service.schedules.scheduler import Scheduler
from runner.spec.labels import SCHEDULE_LABEL
from tests.conftest import write_job
from tests.service.conftest import utc
from tests.support.fakes import FakeClock, FakeLauncher


def test_apply_creates_then_finds_it_unchanged_then_updates(
    service: LocalSchedules, clock: FakeClock, scheduled: Callable[..., Path]
) -> None:
    path = scheduled(timeZone="Europe/Berlin", concurrency="Replace")
    record, result = service.apply_record(path, "process")
    assert result is ApplyResult.CREATED
    assert (record.cron, record.time_zone, record.concurrency, record.backend) == (
        "30 2 * * *",
        "Europe/Berlin",
        "Replace",
        "process",
    )
    assert record.base_dir == str(path.parent.absolute()) and record.since == clock.time()
    assert yaml.safe_load(record.manifest_text)["spec"]["retries"] == 0  # resolved: defaults filled in
    clock.now += 60
    assert service.apply_record(path, "process") == (record, ApplyResult.UNCHANGED)
    write_job(
        path.parent, "nightly", command=["true"], schedule={"cron": "30 2 * * *", "timeZone": "Europe/Berlin"}
    )
    updated, result = service.apply_record(path, "process")
    assert result is ApplyResult.UPDATED
    assert (updated.created, updated.updated, updated.since) == (record.created, clock.time(), record.since)
    assert updated.concurrency == "Forbid"


def test_a_new_timing_counts_slots_from_the_apply(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: Callable[..., Scheduler],
) -> None:
    path = scheduled(cron="0 3 * * *")
    service.apply(path, "process")
    clock.set(utc(2024, 3, 2, 2, 45))
    scheduled(cron="30 2 * * *")  # 02:30 has just passed: it is not run at once
    assert service.apply_record(path, "process")[0].since == clock.time()
    assert make_scheduler().tick().results == ()
    assert launcher.launched == []


def test_apply_refuses_a_manifest_without_a_schedule(
    service: LocalSchedules, job: Callable[..., Path]
) -> None:
    with pytest.raises(UserError, match=r"has no spec\.schedule") as info:
        service.apply(job("once"), "process")
    assert info.value.hint is not None and "schedule:" in info.value.hint


def test_apply_refuses_kubernetes_and_what_cannot_run_here(
    service: LocalSchedules, scheduled: Callable[..., Path], tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="CronJobs on the cluster"):
        service.apply(scheduled(), "kubernetes")
    missing = write_job(
        tmp_path / "jobs" / "needs-data",
        "needs-data",
        inputs=[{"name": "cells", "source": "no-such-dir", "path": "/data"}],
        schedule={"cron": "@daily"},
    )
    with pytest.raises(SubmitError, match="does not exist"):
        service.apply(missing, "process")
    with pytest.raises(ManifestError):
        service.apply(tmp_path / "nope.yaml", "process")
    assert service.list_schedules() == []


def test_list_shows_the_next_run_in_the_zone_and_the_last_run(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: Callable[..., Scheduler],
) -> None:
    service.apply(scheduled(timeZone="America/New_York"), "process")
    service.apply(scheduled("hourly", cron="@hourly"), "process")
    views = service.list_schedules()
    assert [view.name for view in views] == ["hourly", "nightly"]
    nightly = views[1]
    assert nightly.next_run is not None and nightly.next_run.isoformat() == "2024-03-02T02:30:00-05:00"
    assert nightly.last_run is None and nightly.last_result is None and not nightly.paused
    clock.set(utc(2024, 3, 1, 13))
    make_scheduler().tick()
    hourly = service.get("hourly")
    assert hourly.last_run is not None and hourly.last_result == "running"
    assert hourly.next_run is not None and hourly.next_run.isoformat() == "2024-03-01T14:00:00+00:00"


def test_a_manifest_suspend_cannot_be_resumed_by_hand(
    service: LocalSchedules, scheduled: Callable[..., Path]
) -> None:
    service.apply(scheduled(suspend=True), "process")
    assert service.get("nightly").paused
    with pytest.raises(UserError, match="suspended by its manifest"):
        service.resume("nightly")


def test_trigger_runs_now_labelled_and_leaves_the_slots_alone(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: Callable[..., Scheduler],
) -> None:
    service.apply(scheduled(), "process")
    clock.set(utc(2024, 3, 2, 2, 29))
    run = service.trigger("nightly")
    assert run.labels[SCHEDULE_LABEL] == "nightly"
    assert service.trigger("nightly").id != run.id  # a trigger ignores concurrency Forbid
    launcher.finish(run.id)
    clock.set(utc(2024, 3, 2, 2, 30))
    (result,) = make_scheduler().tick().results  # the 02:30 slot is due; Forbid sees the second trigger's run
    assert result.outcome is SlotOutcome.SKIPPED
    history = service.history("nightly")
    assert [(slot.manual, slot.outcome) for slot in history] == [
        (False, SlotOutcome.SKIPPED),
        (True, SlotOutcome.STARTED),
        (True, SlotOutcome.STARTED),
    ]


def test_delete_forgets_the_schedule_but_not_its_runs(
    service: LocalSchedules, launcher: FakeLauncher, scheduled: Callable[..., Path]
) -> None:
    service.apply(scheduled(), "process")
    run = service.trigger("nightly")
    assert service.delete("nightly").name == "nightly"
    assert service.list_schedules() == []
    assert launcher.find(run.id) is not None and not launcher.runs[run.id].state.terminal
    with pytest.raises(NotFoundError, match="schedule 'nightly' not found"):
        service.pause("nightly")


def test_the_snapshot_plans_like_the_file_did(service: LocalSchedules, tmp_path: Path) -> None:
    directory = tmp_path / "jobs" / "withdata"
    (directory / "data").mkdir(parents=True)
    path = write_job(
        directory,
        "withdata",
        inputs=[{"name": "cells", "source": "data", "path": "/data"}],
        schedule={"cron": "@daily"},
    )
    record, _ = service.apply_record(path, "process")
    path.unlink()  # later edits or removal of the file do not matter: the snapshot does
    loaded = snapshot(record)
    assert loaded.base_dir == directory.absolute()
    assert loaded.manifest.spec.inputs[0].source == "data"
    assert loaded.manifest.spec.schedule is not None and loaded.manifest.spec.schedule.cron == "@daily"
