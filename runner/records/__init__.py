"""Run records: one SQLite database under RUNNER_HOME, shared by every runner process.

The CLI, the detached supervisors of local runs and (later) schedulers all read and write here, so
every write is a short transaction and the database runs in WAL mode with a busy timeout.

A full disk is a DiskFullError (runner.records.database). A command reports it; a supervisor, which
must not lose the outcome of a job that has ended, opens its records with `patience` and retries its
writes until space is freed (or its patience runs out).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from runner.clock import SYSTEM_CLOCK, Clock
from runner.errors import DiskFullError, NotFoundError, UserError
from runner.records.database import add_missing_columns, connect, immediate

T = TypeVar("T")

# How long a patient writer waits between tries while the disk is full.
FULL_DISK_RETRY_SECONDS = 2.0


class RunState(StrEnum):
    """A run's state. It is building from the moment of submit while its image is made (and pushed,
    and its inputs uploaded): runner.service.building. Two belong to collection, once the job has ended
    (local runs):

    - collecting: its outcome is recorded (RunRecord.outcome) and a process (the supervisor, a
      detached collector or `runner collect`, whose pid is the record's supervisor_pid) is writing it
      into the store. It ends in the outcome's state, or in uncollected.
    - uncollected: collecting failed (the store is full, read-only, unreachable). Nothing is lost: the
      work directory keeps the outputs and logs, and the outcome stays recorded. `runner collect RUN`
      tries again, as does the next command that notices it (at most once a minute).
    """

    BUILDING = "building"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"
    LOST = "lost"
    COLLECTING = "collecting"
    UNCOLLECTED = "uncollected"

    @property
    def terminal(self) -> bool:
        """The job has ended: nothing of it runs and it holds no GPU (it may still be collected)."""
        return self not in (RunState.BUILDING, RunState.PENDING, RunState.RUNNING)

    @property
    def final(self) -> bool:
        """Nothing more happens to the run by itself: ended and not being collected. An uncollected run
        is final (its `runner submit` returns) though a later command may still collect it."""
        return self.terminal and self is not RunState.COLLECTING

    @property
    def collected(self) -> bool:
        """Ended and completely in the store (or, for a cluster run, in its pods' hands)."""
        return self.terminal and self not in (RunState.COLLECTING, RunState.UNCOLLECTED)


@dataclass(frozen=True)
class RunRecord:
    id: str
    job: str
    backend: str
    state: RunState
    created: float
    workdir: str
    store_url: str
    manifest: str  # the resolved manifest, YAML
    launch: dict[str, Any] = field(default_factory=dict)  # backend-specific launch details
    labels: dict[str, str] = field(default_factory=dict)
    message: str = ""
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    max_attempts: int = 1
    exit_code: int | None = None
    gpus: str = ""  # comma-separated device indices held by the run
    supervisor_pid: int | None = None
    supervisor_start: str | None = None  # process start time, to tell a reused pid apart
    job_pgid: int | None = None
    job_start: str | None = None  # the job's process group leader's start time, as supervisor_start
    # once the job has ended (collecting, uncollected): its outcome, to record when it is collected
    outcome: dict[str, Any] = field(default_factory=dict)
    next_collect: float | None = None  # an uncollected run is tried again automatically from then
    # a cluster run: its Job as last read, {"version": its resourceVersion, "pods": whether that reading
    # needed the pods too}; a Job listed later at the same version, whose pods were not needed, has
    # nothing new to say (runner.backends.kubernetes reads no whole Job for it). None: never read.
    seen: dict[str, Any] | None = None

    @property
    def gpu_indices(self) -> list[int]:
        return [int(index) for index in self.gpus.split(",") if index]


_JSON_COLUMNS = {"launch", "labels", "outcome"}
_NULLABLE_JSON_COLUMNS = {"seen"}  # NULL is None, not {}
_COLUMNS = [f.name for f in fields(RunRecord)]
RUNS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    {", ".join(name + (" TEXT PRIMARY KEY" if name == "id" else "") for name in _COLUMNS)}
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, created);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state);
"""


class RunRecords:
    def __init__(self, database: Path, *, patience: float = 0.0, clock: Clock = SYSTEM_CLOCK) -> None:
        """patience: how long a write waits for a full disk to have room again (0: it fails at once)."""
        self._db = connect(database, RUNS_SCHEMA)
        add_missing_columns(self._db, "runs", _COLUMNS)
        self._patience = patience
        self._clock = clock

    def _patiently(self, write: Callable[[], T]) -> T:
        give_up = self._clock.monotonic() + self._patience
        while True:
            try:
                return write()
            except DiskFullError:
                if self._clock.monotonic() >= give_up:
                    raise
                self._clock.sleep(FULL_DISK_RETRY_SECONDS)

    def close(self) -> None:
        self._db.close()

    def exclusive(self) -> AbstractContextManager[None]:
        """A write transaction taken up front: decisions made inside see no concurrent writer."""
        return immediate(self._db)

    def create(self, record: RunRecord) -> None:
        """Record a new run, or a launched one over its building record (the backend's launch takes the
        run over). Any other run of that id is an error (sqlite3.IntegrityError)."""
        values = _to_row(record)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "id")
        statement = (
            f"{_insert(values)} "
            f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE runs.state = '{RunState.BUILDING.value}'"
        )
        written = self._patiently(lambda: self._db.execute(statement, list(values.values())))
        if written.rowcount != 1:
            raise sqlite3.IntegrityError(f"run {record.id} is already recorded")

    def create_new(self, records: Sequence[RunRecord]) -> list[str]:
        """Record those of these runs not recorded yet, in one transaction (one statement for them all:
        adoption records thousands at once); the ids of those recorded. A run recorded meanwhile, even
        one still building, keeps its record."""
        if not records:
            return []
        with self.exclusive():
            known = {row[0] for row in self._db.execute(*_ids_in([record.id for record in records]))}
            new = [record for record in records if record.id not in known]
            if new:
                rows = [_to_row(record) for record in new]
                values = [list(row.values()) for row in rows]
                self._patiently(lambda: self._db.executemany(_insert(rows[0]), values))
        return [record.id for record in new]

    def update(self, run_id: str, **changes: Any) -> RunRecord:
        record = replace(self.get(run_id), **changes)
        values = {name: value for name, value in _to_row(record).items() if name in changes}
        if not values:
            return record
        assignments = ", ".join(f"{name} = ?" for name in values)
        statement = f"UPDATE runs SET {assignments} WHERE id = ?"
        self._patiently(lambda: self._db.execute(statement, [*values.values(), run_id]))
        return record

    def delete(self, run_id: str) -> None:
        """Forget a run (`runner delete`, `runner prune`): its record only."""
        self._patiently(lambda: self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,)))

    def find(self, run_id: str) -> RunRecord | None:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _from_row(row)

    def ids(self) -> set[str]:
        """The id of every recorded run, without reading the records themselves."""
        return {row[0] for row in self._db.execute("SELECT id FROM runs")}

    def seen(
        self, *, backend: str, launch: Mapping[str, str | None], states: Collection[RunState]
    ) -> dict[str, dict[str, Any] | None]:
        """What each run of the backend in one of states, whose launch holds these values (a value it
        lacks counts as None), last read of its backend's object (RunRecord.seen), by run id, newest first:
        only those two columns, without reading the records themselves (whose JSON columns cost most of
        reading thousands of them)."""
        clauses, params = _launched(backend, launch)
        clauses.append(_in_states(states))
        params += [state.value for state in states]
        query = f"SELECT id, seen FROM runs WHERE {' AND '.join(clauses)} ORDER BY created DESC, id DESC"
        return {
            row["id"]: None if row["seen"] is None else json.loads(row["seen"])
            for row in self._db.execute(query, params)
        }

    def holds(self, *, backend: str, launch: Mapping[str, str | None]) -> bool:
        """Whether any run of the backend, in any state, has a launch holding these values (as seen)."""
        clauses, params = _launched(backend, launch)
        query = f"SELECT 1 FROM runs WHERE {' AND '.join(clauses)} LIMIT 1"
        return self._db.execute(query, params).fetchone() is not None

    def get(self, run_id: str) -> RunRecord:
        record = self.find(run_id)
        if record is None:
            raise NotFoundError(f"run {run_id!r} not found", hint="`runner list` shows the runs")
        return record

    def list(
        self,
        *,
        job: str | None = None,
        active_only: bool = False,
        limit: int | None = None,
        states: Collection[RunState] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first; only those in states (as recorded), and only those of these ids, when
        given (a run of them not recorded is left out)."""
        query = "SELECT * FROM runs"
        clauses: list[str] = []
        params: list[Any] = []
        if job is not None:
            clauses.append("job = ?")
            params.append(job)
        if states is not None:
            clauses.append(_in_states(states))
            params += [state.value for state in states]
        if ids is not None:
            clauses.append(_ID_IN)
            params.append(json.dumps(list(ids)))
        if active_only:
            clauses.append("state IN (?, ?)")  # what holds GPUs: collecting runs have ended
            params += [RunState.PENDING.value, RunState.RUNNING.value]
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY created DESC, id DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [_from_row(row) for row in self._db.execute(query, params)]

    def resolve(self, reference: str) -> RunRecord:
        """A run by id, a job name (its latest run) or a unique prefix of a run id."""
        exact = self.find(reference)
        if exact is not None:
            return exact
        latest = self.list(job=reference, limit=1)
        if latest:
            return latest[0]
        escaped = reference.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(
            "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT 6", (escaped + "%",)
        ).fetchall()
        if len(rows) == 1:
            return _from_row(rows[0])
        if rows:
            names = ", ".join(row["id"] for row in rows[:5])
            raise UserError(f"{reference!r} matches several runs: {names}", hint="give more of the run id")
        raise NotFoundError(f"no run or job named {reference!r}", hint="`runner list` shows the runs")


def _in_states(states: Collection[RunState]) -> str:
    """The clause of runs in one of states (none: no run), whose values follow as parameters."""
    return f"state IN ({', '.join('?' for _ in states) or 'NULL'})"


def _launched(backend: str, launch: Mapping[str, str | None]) -> tuple[list[str], list[Any]]:
    """The clauses, and their parameters, of the runs of the backend whose launch holds these values (a
    key the launch lacks, or holds as null, matches None)."""
    clauses = ["backend = ?"]
    params: list[Any] = [backend]
    for key, value in launch.items():
        clauses.append("json_extract(launch, ?) IS ?")
        params += [f"$.{json.dumps(key)}", value]
    return clauses, params


# one parameter for any number of ids: SQLite bounds how many parameters a statement takes
_ID_IN = "id IN (SELECT value FROM json_each(?))"


def _ids_in(ids: Sequence[str]) -> tuple[str, list[Any]]:
    """The query of which of these run ids are recorded."""
    return f"SELECT id FROM runs WHERE {_ID_IN}", [json.dumps(list(ids))]


def _insert(columns: Collection[str]) -> str:
    """INSERT of a run's row with these columns, their values as parameters in that order."""
    return f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def _to_row(record: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in _COLUMNS:
        value = getattr(record, name)
        if name in _JSON_COLUMNS or (name in _NULLABLE_JSON_COLUMNS and value is not None):
            value = json.dumps(value, sort_keys=True)
        row[name] = value
    return row


def _from_row(row: sqlite3.Row) -> RunRecord:
    values: dict[str, Any] = {name: row[name] for name in _COLUMNS}
    for name in _JSON_COLUMNS:
        values[name] = {} if values[name] is None else json.loads(values[name])  # NULL: an older database
    for name in _NULLABLE_JSON_COLUMNS:
        values[name] = None if values[name] is None else json.loads(values[name])
    values["state"] = RunState(values["state"])
    return RunRecord(**values)
