"""A scheduled run through the real process backend: an ordinary run, labelled, recorded with its slot."""

from __future__ import annotations

from pathlib import Path

from runner.config import Settings
from runner.records import RunRecord, RunRecords, RunState
from runner.records.schedules import SlotOutcome
from runner.service.schedules.local import LocalSchedules
from runner.service.schedules.scheduler import Scheduler
from runner.spec.labels import JOB_LABEL, SCHEDULE_LABEL
from tests.conftest import store_dir, wait_for, write_job
from tests.service.conftest import utc
from tests.support.fakes import FakeClock


def test_a_due_slot_becomes_an_ordinary_labelled_run(settings: Settings, home: Path, tmp_path: Path) -> None:
    directory = tmp_path / "jobs" / "nightly"
    directory.mkdir(parents=True)
    (directory / "note.txt").write_text("from the context\n")
    path = write_job(
        directory,
        "nightly",
        command=["sh", "-c", 'cat note.txt; echo "$RUNNER_RUN_ID" > "$RUNNER_OUTPUTS/id.txt"'],
        schedule={"cron": "30 2 * * *", "timeZone": "Asia/Seoul"},
    )
    clock = FakeClock(utc(2024, 3, 1, 12))
    service = LocalSchedules(settings, clock)  # the real launcher: RunService on the process backend
    service.apply(path, "process")
    path.unlink()  # runs come from the snapshot taken at apply, relative paths from its directory
    scheduler = Scheduler(settings, clock, holder="test")
    clock.set(utc(2024, 3, 1, 17, 30))  # 02:30 in Seoul

    (result,) = scheduler.tick().results
    assert result.outcome is SlotOutcome.STARTED and result.run_id is not None
    records = RunRecords(settings.database)
    run_id = result.run_id

    def ended() -> RunRecord | None:
        found = records.get(run_id)
        return found if found.state.final else None  # terminal includes collecting: not yet in the store

    run: RunRecord = wait_for(ended, 60, "the scheduled run to end")
    assert run.state is RunState.SUCCEEDED, run.message
    assert run.labels[SCHEDULE_LABEL] == "nightly" and run.labels[JOB_LABEL] == "nightly"
    assert (store_dir(home, "nightly", run.id) / "outputs" / "id.txt").read_text().strip() == run.id
    assert (store_dir(home, "nightly", run.id) / "logs" / "attempt-1.log").read_text() == "from the context\n"
    (slot,) = service.history("nightly")
    assert (slot.slot, slot.run_id) == (utc(2024, 3, 1, 17, 30).timestamp(), run.id)
    view = service.get("nightly")
    assert view.last_run is not None and view.last_run == run.id and view.last_result is RunState.SUCCEEDED

    service.delete("nightly")
    assert records.get(run.id).state is RunState.SUCCEEDED  # past runs stay
    scheduler.close()
