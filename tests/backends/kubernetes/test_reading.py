"""A run whose Job is gone: read from the run.json its agent wrote when that tells the run's end (the TTL
controller removed the finished Job before the runner looked), else deleted outside the runner."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.backends.kubernetes import reader
from runner.backends.kubernetes.pure.reading import missing_job, stale_since_seen
from runner.backends.kubernetes.reader import RunReader
from runner.records import RunRecord, RunRecords, RunState
from runner.spec.labels import SCHEDULE_LABEL

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DELETED = "cancelled: its Job was deleted outside the runner (kubectl delete?)"


def record(*, max_attempts: int = 1, created: bool = True, labels: dict[str, str] | None = None) -> RunRecord:
    return RunRecord(
        id="train-abc123",
        job="train",
        backend="kubernetes",
        state=RunState.RUNNING,
        created=NOW - 600,
        workdir="",
        store_url="s3://bucket/runs",
        manifest="",
        launch={"namespace": "ml", "created": created},
        labels=labels or {},
        attempts=1,
        max_attempts=max_attempts,
    )


def stored(state: str, *, attempt: int = 1, code: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "state": state,
        "message": f"exited with code {code}",
        "exitCode": code,
        "attempt": attempt,
        "started": "2027-01-15T08:00:00Z",  # NOW
        "finished": "2027-01-15T08:05:00.500000Z",
        **extra,
    }


def test_a_succeeded_run_whose_job_its_ttl_removed_reads_succeeded_from_the_store() -> None:
    changes = missing_job(record(), NOW, stored("succeeded"))
    assert changes["state"] is RunState.SUCCEEDED
    assert changes["message"].startswith("succeeded (its finished Job was removed by its TTL")
    assert changes["exit_code"] == 0
    assert (changes["started"], changes["finished"]) == (NOW, NOW + 300.5)


def test_schema_1_times_are_epoch_seconds() -> None:
    changes = missing_job(record(), NOW, stored("succeeded", started=100.0, finished=160.0))
    assert (changes["started"], changes["finished"]) == (100.0, 160.0)


def test_a_failure_on_the_last_attempt_or_an_unretryable_code_reads_failed() -> None:
    last = missing_job(record(max_attempts=2), NOW, stored("failed", attempt=2, code=3))
    assert (last["state"], last["exit_code"], last["attempts"]) == (RunState.FAILED, 3, 2)
    assert last["message"].startswith("failed: exited with code 3")
    unretryable = missing_job(record(max_attempts=3), NOW, stored("failed", attempt=1, code=127))
    assert unretryable["state"] is RunState.FAILED


@pytest.mark.parametrize(
    "document",
    [
        None,  # nothing collected: the pod never ran, or the store cannot be read from here
        {},
        stored("failed", attempt=1, code=3),  # retries were left: the Job was deleted between attempts
        stored("cancelled", code=143),  # the agent collected a pod stopped by the deletion
        stored("succeeded", attempt=0),
        stored("succeeded", attempt=True),
        {"state": "succeeded"},  # no attempt: not a document the agent wrote
    ],
)
def test_anything_else_is_a_job_deleted_outside_the_runner(document: dict[str, Any] | None) -> None:
    changes = missing_job(record(max_attempts=2), NOW, document)
    assert changes == {"state": RunState.CANCELLED, "finished": NOW, "message": DELETED}


def test_a_schedule_run_and_a_submission_that_never_created_its_job() -> None:
    scheduled = missing_job(record(labels={SCHEDULE_LABEL: "nightly"}), NOW, None)
    assert scheduled["state"] is RunState.CANCELLED and "its schedule was deleted" in scheduled["message"]
    lost = missing_job(record(created=False), NOW, stored("succeeded"))
    assert lost["state"] is RunState.LOST


def test_a_run_whose_submission_is_still_creating_its_objects_is_not_lost() -> None:
    assert missing_job(record(created=False), NOW, submitting=True) == {}, "its Job is still to come"
    gone = missing_job(record(created=False), NOW, submitting=False)
    assert gone["state"] is RunState.LOST
    assert gone["message"] == "lost: the submission stopped before its Job was created"


def test_an_adopted_run_reads_its_request_back_from_its_job() -> None:
    from runner.backends.kubernetes.adoption import requested

    container = {"resources": {"limits": {"nvidia.com/gpu": "2", "memory": "8Gi", "cpu": "4"}}}
    indexed = {"completionMode": "Indexed", "completions": 3}
    assert requested(indexed, container) == {"gpus": 2, "memory": 8 * 2**30, "workers": 3}
    assert requested({}, {}) == {"gpus": 0}
    assert requested({}, {"resources": {"limits": {"memory": "lots"}}}) == {"gpus": 0}


def test_the_runs_a_listing_leaves_behind_are_those_whose_job_changed_went_or_needs_its_pods() -> None:
    seen: dict[str, dict[str, Any] | None] = {
        "current": {"version": "7", "pods": False},
        "changed": {"version": "7", "pods": False},
        "gone": {"version": "7", "pods": False},
        "waiting": {"version": "7", "pods": True},  # its state came from its pods, which change alone
        "never-read": None,
    }
    listed = {name: {"resourceVersion": "7"} for name in seen if name != "gone"}
    listed["changed"] = {"resourceVersion": "8"}
    listed["not-ours"] = {"resourceVersion": "7"}
    assert stale_since_seen(seen, listed) == ["changed", "gone", "waiting", "never-read"]
    assert stale_since_seen(seen, {**listed, "current": {}}) == list(seen), "no version listed: read it"


def test_a_submission_that_created_its_job_after_it_was_looked_for_is_not_lost(tmp_path: Path) -> None:
    """The race a reading can meet: the Job is looked for (not there yet), then the submission creates
    it, records so and ends, and only then is the submission found gone. The record, read again, says
    the Job was created: nothing changes now, and the next reading finds the Job."""
    records = RunRecords(tmp_path / "runs.db")
    waiting = replace(record(created=False), state=RunState.PENDING, store_url="")  # no submitter alive
    records.create(waiting)
    as_read = records.get(waiting.id)
    records.update(waiting.id, launch={**waiting.launch, "created": True})  # the submission, meanwhile
    assert RunReader.without_job(as_read, records, NOW) == {}

    never = replace(waiting, id="train-zzz999")  # its record still says no Job was created: lost
    records.create(never)
    assert RunReader.without_job(never, records, NOW)["state"] is RunState.LOST
    records.close()


def test_a_submission_that_ends_while_its_run_is_read_is_asked_after_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submission is at it when the reading asks, and has ended (its Job created) an instant later:
    the run is still to come, not lost, as it was when a second asking found the submission gone."""
    records = RunRecords(tmp_path / "runs.db")
    waiting = replace(record(created=False), state=RunState.PENDING, store_url="")
    records.create(waiting)
    answers = iter([True, False, False])  # alive, then ended for every later asking
    monkeypatch.setattr(reader, "submitting", lambda record: next(answers))
    assert RunReader.without_job(records.get(waiting.id), records, NOW) == {}
    records.close()
