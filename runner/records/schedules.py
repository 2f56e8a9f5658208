"""Schedules, the slots they handled and the scheduler lease, in the run records' SQLite database.

Three tables live beside ``runs`` in ``RUNNER_HOME/runs.db`` (WAL, busy timeout, short transactions):

``schedules``  one row per applied schedule: the resolved manifest as applied (a snapshot, so a later
               edit of the file changes nothing until the next apply), its timing and concurrency,
               whether it is paused, and the last slot handled with its run.
``slots``      one row per handled slot. Its primary key (schedule, slot) is what makes a slot run at
               most once: a scheduler claims a slot with one INSERT inside ``BEGIN IMMEDIATE`` and only
               the one whose INSERT lands launches it, however many schedulers race.
``leases``     one row per lease: which scheduler process is the active one for this home and until
               when. Others wait as standbys and take over once it expires.

Times are seconds since the epoch (UTC), as in ``runs``.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.errors import NotFoundError
from runner.records import RUNS_SCHEMA
from runner.records.database import connect, immediate

SCHEDULER_LEASE = "scheduler"


class SlotOutcome(StrEnum):
    CLAIMED = "claimed"  # taken by a scheduler that is launching its run
    STARTED = "started"  # its run was launched
    SKIPPED = "skipped"  # concurrency Forbid: an earlier run was still active
    MISSED = "missed"  # found later than its startingDeadline
    FAILED = "failed"  # the launch failed; the message says why


@dataclass(frozen=True)
class ScheduleRecord:
    name: str
    backend: str
    manifest_path: str  # the file applied, absolute
    manifest_text: str  # the resolved manifest at apply, YAML: what every run of the schedule is planned from
    base_dir: str  # the manifest's directory: relative context and inputs are resolved against it
    cron: str
    time_zone: str
    concurrency: str  # Forbid, Replace or Allow
    starting_deadline: int  # seconds a slot may still start late
    suspend: bool  # spec.schedule.suspend of the applied manifest
    paused: bool  # `runner schedule pause`
    created: float
    updated: float  # the last change by a user (apply, pause, resume); never by the scheduler
    since: float  # slots at or before this never run: set at creation, resume and a change of timing
    last_slot: float | None = None  # the latest slot handled, whatever its outcome
    last_run_id: str | None = None  # the latest run started, by a slot or a trigger
    last_outcome: str | None = None
    last_message: str = ""

    @property
    def active(self) -> bool:
        """Whether slots are due at all: neither paused nor suspended by its manifest."""
        return not (self.paused or self.suspend)


@dataclass(frozen=True)
class SlotRecord:
    schedule: str
    slot: float  # the instant the slot was due; the trigger's time for a manual run
    outcome: SlotOutcome
    recorded: float
    run_id: str | None = None
    message: str = ""
    manual: bool = False  # started by `runner schedule trigger`, not by the cron expression


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires: float

    def held_by(self, holder: str, now: float) -> bool:
        return self.holder == holder and now < self.expires


_SCHEDULE_COLUMNS = [f.name for f in fields(ScheduleRecord)]
_BOOLEAN_COLUMNS = {"suspend", "paused"}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS schedules (
    {", ".join(name + (" TEXT PRIMARY KEY" if name == "name" else "") for name in _SCHEDULE_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS slots (
    schedule TEXT NOT NULL,
    slot REAL NOT NULL,
    outcome TEXT NOT NULL,
    recorded REAL NOT NULL,
    run_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    manual INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule, slot)
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class ScheduleRecords:
    def __init__(self, database: Path) -> None:
        # Whichever opens the database first creates every table, the runs' too.
        self._db = connect(database, RUNS_SCHEMA + _SCHEMA, check_same_thread=False)

    def close(self) -> None:
        self._db.close()

    def exclusive(self) -> AbstractContextManager[None]:
        """A write transaction taken up front: what is read inside cannot change before it commits."""
        return immediate(self._db)

    # ------------------------------------------------------------------ schedules

    def find(self, name: str) -> ScheduleRecord | None:
        row = self._db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        return None if row is None else _schedule_from_row(row)

    def get(self, name: str) -> ScheduleRecord:
        record = self.find(name)
        if record is None:
            raise NotFoundError(
                f"schedule {name!r} not found", hint="`runner schedule list` shows the schedules"
            )
        return record

    def all(self) -> list[ScheduleRecord]:
        return [_schedule_from_row(row) for row in self._db.execute("SELECT * FROM schedules ORDER BY name")]

    def save(self, record: ScheduleRecord) -> ScheduleRecord:
        """Create the schedule, or replace every column of the one with its name."""
        values = {name: getattr(record, name) for name in _SCHEDULE_COLUMNS}
        marks = ", ".join("?" for _ in values)
        self._db.execute(
            f"INSERT OR REPLACE INTO schedules ({', '.join(values)}) VALUES ({marks})", list(values.values())
        )
        return record

    def update(self, name: str, **changes: Any) -> ScheduleRecord:
        unknown = set(changes) - set(_SCHEDULE_COLUMNS)
        if unknown:
            raise ValueError(f"unknown schedule columns: {sorted(unknown)}")
        assignments = ", ".join(f"{column} = ?" for column in changes)
        cursor = self._db.execute(
            f"UPDATE schedules SET {assignments} WHERE name = ?", [*changes.values(), name]
        )
        if cursor.rowcount == 0:
            self.get(name)  # raises NotFoundError
        return self.get(name)

    def delete(self, name: str) -> ScheduleRecord:
        """Remove the schedule and its slot history; the runs it started stay in ``runs``."""
        with self.exclusive():
            record = self.get(name)
            self._db.execute("DELETE FROM slots WHERE schedule = ?", (name,))
            self._db.execute("DELETE FROM schedules WHERE name = ?", (name,))
        return record

    # ---------------------------------------------------------------------- slots

    def claim_slot(self, name: str, slot: float, now: float, *, expect_updated: float | None = None) -> bool:
        """Take a cron slot for launching; False if it was already handled or the schedule changed.

        ``expect_updated`` is the schedule's ``updated`` the caller decided from: a pause, resume or
        apply since then wins over the decision.
        """
        with self.exclusive():
            record = self.find(name)
            if record is None or (expect_updated is not None and record.updated != expect_updated):
                return False
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO slots (schedule, slot, outcome, recorded) VALUES (?, ?, ?, ?)",
                (name, slot, SlotOutcome.CLAIMED.value, now),
            ).rowcount
            if not inserted:
                return False
            if record.last_slot is None or slot > record.last_slot:
                self._db.execute("UPDATE schedules SET last_slot = ? WHERE name = ?", (slot, name))
        return True

    def record_trigger(self, name: str, now: float, run_id: str) -> float:
        """Record a run started by hand; its slot is the trigger's time (made unique). last_slot stays."""
        with self.exclusive():
            self.get(name)
            moment = now
            while not self._db.execute(
                "INSERT OR IGNORE INTO slots (schedule, slot, outcome, recorded, run_id, message, manual) "
                "VALUES (?, ?, ?, ?, ?, ?, 1)",
                (name, moment, SlotOutcome.STARTED.value, now, run_id, "triggered by hand"),
            ).rowcount:
                moment += 0.001
            self._db.execute(
                "UPDATE schedules SET last_run_id = ?, last_outcome = ?, last_message = ? WHERE name = ?",
                (run_id, SlotOutcome.STARTED.value, "triggered by hand", name),
            )
        return moment

    def finish_slot(
        self,
        name: str,
        slot: float,
        outcome: SlotOutcome,
        now: float,
        *,
        run_id: str | None = None,
        message: str = "",
    ) -> None:
        """Record how a claimed slot ended, and make it the schedule's last result."""
        with self.exclusive():
            self._db.execute(
                "INSERT INTO slots (schedule, slot, outcome, recorded, run_id, message) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (schedule, slot) DO UPDATE SET "
                "outcome = excluded.outcome, recorded = excluded.recorded, run_id = excluded.run_id, "
                "message = excluded.message",
                (name, slot, outcome.value, now, run_id, message),
            )
            changes: dict[str, Any] = {"last_outcome": outcome.value, "last_message": message}
            if run_id is not None:
                changes["last_run_id"] = run_id
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(f"UPDATE schedules SET {assignments} WHERE name = ?", [*changes.values(), name])

    def slots(self, name: str, limit: int | None = None) -> list[SlotRecord]:
        """The schedule's handled slots, newest first."""
        query = "SELECT * FROM slots WHERE schedule = ? ORDER BY slot DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [_slot_from_row(row) for row in self._db.execute(query, (name,))]

    # --------------------------------------------------------------------- leases

    def acquire_lease(self, name: str, holder: str, now: float, ttl: float) -> Lease:
        """Take or renew the lease when it is free, expired or already ours; the lease as it stands."""
        with self.exclusive():
            current = self.lease(name)
            if current is not None and current.holder != holder and now < current.expires:
                return current
            self._db.execute(
                "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires",
                (name, holder, now + ttl),
            )
        return Lease(name, holder, now + ttl)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (a standby need not wait for it to expire), if it is ours."""
        self._db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease(self, name: str) -> Lease | None:
        row = self._db.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else Lease(row["name"], row["holder"], row["expires"])


def _schedule_from_row(row: sqlite3.Row) -> ScheduleRecord:
    values: dict[str, Any] = {name: row[name] for name in _SCHEDULE_COLUMNS}
    for name in _BOOLEAN_COLUMNS:
        values[name] = bool(values[name])
    return ScheduleRecord(**values)


def _slot_from_row(row: sqlite3.Row) -> SlotRecord:
    return SlotRecord(
        schedule=row["schedule"],
        slot=row["slot"],
        outcome=SlotOutcome(row["outcome"]),
        recorded=row["recorded"],
        run_id=row["run_id"],
        message=row["message"],
        manual=bool(row["manual"]),
    )
