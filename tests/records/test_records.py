"""Run records in SQLite: creation, updates, lookup by id, prefix or job name, concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.errors import NotFoundError, UserError
from runner.records import RunRecord, RunRecords, RunState


def record(run_id: str, job: str = "mnist", created: float = 1.0, **extra: object) -> RunRecord:
    fields: dict[str, object] = {
        "id": run_id,
        "job": job,
        "backend": "process",
        "state": RunState.PENDING,
        "created": created,
        "workdir": f"/w/{run_id}",
        "store_url": "file:///s",
        "manifest": "kind: Job\n",
    }
    return RunRecord(**{**fields, **extra})  # type: ignore[arg-type]


@pytest.fixture
def records(tmp_path: Path) -> RunRecords:
    return RunRecords(tmp_path / "runs.db")


def test_round_trip_with_json_fields(records: RunRecords) -> None:
    original = record("mnist-aaaaaa", labels={"team": "vision"}, launch={"command": ["python"], "gpus": 1})
    records.create(original)
    assert records.get("mnist-aaaaaa") == original


def test_update_changes_only_what_is_named(records: RunRecords) -> None:
    records.create(record("mnist-aaaaaa"))
    updated = records.update("mnist-aaaaaa", state=RunState.RUNNING, attempts=1, gpus="0,1")
    assert updated.state is RunState.RUNNING and updated.gpu_indices == [0, 1]
    assert records.get("mnist-aaaaaa") == updated


def test_an_update_with_nothing_to_change_reads_the_record(records: RunRecords) -> None:
    records.create(record("mnist-aaaaaa", message="submitting"))
    assert records.update("mnist-aaaaaa") == records.get("mnist-aaaaaa")
    with pytest.raises(NotFoundError):
        records.update("mnist-nobody")


def test_resolve_by_id_job_name_and_prefix(records: RunRecords) -> None:
    records.create(record("mnist-aaaaaa", created=1))
    records.create(record("mnist-abbbbb", created=2))
    records.create(record("malaria-cccccc", job="malaria", created=3))
    assert records.resolve("mnist-aaaaaa").id == "mnist-aaaaaa"
    assert records.resolve("mnist").id == "mnist-abbbbb", "a job name means its latest run"
    assert records.resolve("mal").id == "malaria-cccccc"
    with pytest.raises(UserError, match="matches several runs: mnist-abbbbb, mnist-aaaaaa"):
        records.resolve("mnist-a")
    with pytest.raises(NotFoundError, match="no run or job named 'nothing'"):
        records.resolve("nothing")
    with pytest.raises(NotFoundError):
        records.resolve("%")  # LIKE wildcards are matched literally


def test_list_is_newest_first_and_filters(records: RunRecords) -> None:
    for index in range(5):
        records.create(record(f"mnist-{index:06d}", created=index))
    records.update("mnist-000004", state=RunState.SUCCEEDED)
    assert [r.id for r in records.list(limit=2)] == ["mnist-000004", "mnist-000003"]
    assert "mnist-000004" not in [r.id for r in records.list(active_only=True)]
    assert records.list(job="other") == []


def test_terminal_states() -> None:
    assert {state for state in RunState if not state.terminal} == {
        RunState.BUILDING,
        RunState.PENDING,
        RunState.RUNNING,
    }


def test_a_launch_takes_over_a_building_record_and_nothing_else(records: RunRecords) -> None:
    records.create(record("mnist-aaaaaa", state=RunState.BUILDING, workdir=""))
    records.create(record("mnist-aaaaaa", state=RunState.PENDING, launch={"gpus": 1}))
    launched = records.get("mnist-aaaaaa")
    assert (launched.state, launched.workdir, launched.launch) == (
        RunState.PENDING,
        "/w/mnist-aaaaaa",
        {"gpus": 1},
    )
    with pytest.raises(sqlite3.IntegrityError, match="mnist-aaaaaa is already recorded"):
        records.create(record("mnist-aaaaaa", state=RunState.RUNNING))
    assert records.get("mnist-aaaaaa").state is RunState.PENDING
    assert len(records.list()) == 1


def test_create_new_records_only_the_runs_not_recorded_yet(records: RunRecords) -> None:
    """Adoption's many records at once: a run recorded meanwhile, even one still building, keeps its
    record; the ids recorded come back in the order given."""
    records.create(record("mnist-bbbbbb", state=RunState.BUILDING, workdir=""))
    records.create(record("mnist-cccccc", state=RunState.SUCCEEDED))
    found = [record(f"mnist-{c * 6}", created=float(i), message="found") for i, c in enumerate("abcd")]
    assert records.create_new(found) == ["mnist-aaaaaa", "mnist-dddddd"]
    assert records.create_new([]) == [] and records.create_new(found[:1]) == []
    kept = {r.id: (r.state, r.message) for r in records.list()}
    assert kept == {
        "mnist-aaaaaa": (RunState.PENDING, "found"),
        "mnist-bbbbbb": (RunState.BUILDING, ""),
        "mnist-cccccc": (RunState.SUCCEEDED, ""),
        "mnist-dddddd": (RunState.PENDING, "found"),
    }
    assert records.get("mnist-dddddd") == found[3]


def test_exclusive_sections_serialise_writers(tmp_path: Path) -> None:
    """Two connections incrementing a counter inside exclusive() never lose an update."""
    database = tmp_path / "runs.db"
    RunRecords(database).create(record("mnist-aaaaaa"))

    def bump(times: int) -> None:
        mine = RunRecords(database)
        for _ in range(times):
            with mine.exclusive():
                current = mine.get("mnist-aaaaaa").attempts
                mine.update("mnist-aaaaaa", attempts=current + 1)
        mine.close()

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert RunRecords(database).get("mnist-aaaaaa").attempts == 200


def test_an_older_database_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "runs.db"
    with sqlite3.connect(database) as db:
        db.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, job, backend, state, created, workdir, store_url, "
            "manifest, launch, labels, message, started, finished, attempts, max_attempts, exit_code, gpus, "
            "supervisor_pid, supervisor_start, job_pgid)"
        )
        db.execute(
            "INSERT INTO runs VALUES ('mnist-aaaaaa', 'mnist', 'process', 'succeeded', 1.0, '/w', "
            "'file:///s', '', '{}', '{}', '', NULL, NULL, 1, 1, 0, '', NULL, NULL, NULL)"
        )
    records = RunRecords(database)
    old = records.get("mnist-aaaaaa")
    assert (old.outcome, old.job_start, old.next_collect, old.seen) == ({}, None, None, None)
    records.update("mnist-aaaaaa", outcome={"state": "succeeded"}, job_start="42")
    assert records.get("mnist-aaaaaa").outcome == {"state": "succeeded"}
    records.update("mnist-aaaaaa", seen={"version": "7", "pods": False})
    assert RunRecords(database).get("mnist-aaaaaa").seen == {"version": "7", "pods": False}


def test_a_run_never_read_on_a_cluster_has_seen_nothing_and_ids_lists_every_run(records: RunRecords) -> None:
    records.create(record("mnist-aaaaaa"))
    records.create(replace(record("mnist-bbbbbb"), seen={"version": "12", "pods": True}))
    assert records.get("mnist-aaaaaa").seen is None
    assert records.get("mnist-bbbbbb").seen == {"version": "12", "pods": True}
    assert records.ids() == {"mnist-aaaaaa", "mnist-bbbbbb"}


def test_seen_reads_the_live_runs_of_one_namespace_and_context_and_holds_tells_any_run_there(
    records: RunRecords,
) -> None:
    here = {"namespace": "team", "context": "lab"}

    def cluster_run(run_id: str, created: float, **extra: Any) -> RunRecord:
        return record(run_id, created=created, backend="kubernetes", launch={**here, "image": "i"}, **extra)

    records.create(cluster_run("a-1", 1, state=RunState.RUNNING, seen={"version": "7", "pods": False}))
    records.create(cluster_run("a-2", 3))  # never read: seen None
    records.create(cluster_run("a-3", 2, seen={"version": "9", "pods": True}))
    records.create(cluster_run("done", 4, state=RunState.SUCCEEDED, seen={"version": "8", "pods": False}))
    records.create(record("other-ns", backend="kubernetes", launch={**here, "namespace": "else"}))
    records.create(record("other-context", backend="kubernetes", launch={**here, "context": "prod"}))
    records.create(record("no-context", backend="kubernetes", launch={"namespace": "team"}))
    records.create(record("local", launch=here))  # another backend
    live = (RunState.PENDING, RunState.RUNNING)

    seen = records.seen(backend="kubernetes", launch=here, states=live)
    assert list(seen.items()) == [
        ("a-2", None),
        ("a-3", {"version": "9", "pods": True}),
        ("a-1", {"version": "7", "pods": False}),
    ], "newest first, terminal runs and those of other namespaces, contexts and backends left out"
    default = {"namespace": "team", "context": None}  # a launch without a context: the default one
    assert list(records.seen(backend="kubernetes", launch=default, states=live)) == ["no-context"]
    assert records.holds(backend="kubernetes", launch=here)
    assert not records.seen(backend="kubernetes", launch={**here, "namespace": "x"}, states=live)
    assert not records.holds(backend="kubernetes", launch={**here, "namespace": "x"})
    finished = {"namespace": "old", "context": "lab"}
    records.create(record("old-1", backend="kubernetes", state=RunState.FAILED, launch=finished))
    assert records.holds(backend="kubernetes", launch=finished), "a terminal run counts"
    assert not records.seen(backend="kubernetes", launch=finished, states=live)


def test_list_reads_only_the_runs_of_the_ids_given(records: RunRecords) -> None:
    for number in range(5):
        records.create(record(f"mnist-{number}", created=number, state=RunState.RUNNING))
    assert [r.id for r in records.list(ids=["mnist-1", "mnist-3", "gone"])] == ["mnist-3", "mnist-1"]
    assert [r.id for r in records.list(ids=["mnist-1", "mnist-3"], states=(RunState.FAILED,))] == []
    assert records.list(ids=[]) == []
    many = [f"mnist-{number}" for number in range(5)] + [f"x-{number}" for number in range(40_000)]
    assert len(records.list(ids=many)) == 5, "more ids than SQLite takes parameters"


def test_collection_states() -> None:
    assert RunState.COLLECTING.terminal and not RunState.COLLECTING.final
    assert RunState.UNCOLLECTED.final and not RunState.UNCOLLECTED.collected
    assert {state for state in RunState if state.collected} == {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELLED,
        RunState.LOST,
    }


def test_a_full_disk_is_a_records_error_and_a_patient_writer_waits_for_room(
    records: RunRecords, tmp_path: Path
) -> None:
    import sqlite3

    from runner.errors import DiskFullError
    from runner.records.database import records_error
    from tests.support.fakes import FakeClock

    error = records_error(tmp_path / "runs.db", sqlite3.OperationalError("database or disk is full"))
    assert isinstance(error, DiskFullError)
    assert f"the disk holding RUNNER_HOME ({tmp_path}) is full" in error.message

    class FillsUp:
        """A connection that fails its next `failures` statements as a full disk does."""

        def __init__(self, inner: sqlite3.Connection, failures: int) -> None:
            self.inner, self.failures = inner, failures

        def execute(self, sql: str, parameters: object = ()) -> sqlite3.Cursor:
            if sql.startswith(("UPDATE", "INSERT")) and self.failures:
                self.failures -= 1
                raise error
            return self.inner.execute(sql, parameters)  # type: ignore[arg-type]

    clock = FakeClock()
    patient = RunRecords(tmp_path / "runs.db", patience=60, clock=clock)
    patient.create(record("mnist-aaaaaa"))
    patient._db = FillsUp(patient._db, failures=3)  # type: ignore[assignment]
    assert patient.update("mnist-aaaaaa", attempts=2).attempts == 2
    assert len(clock.sleeps) == 3, "it waited for room three times"
    impatient = RunRecords(tmp_path / "runs.db")
    impatient._db = FillsUp(impatient._db, failures=1)  # type: ignore[assignment]
    with pytest.raises(DiskFullError):
        impatient.update("mnist-aaaaaa", attempts=3)
