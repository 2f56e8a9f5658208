"""The Schedules protocol: what the `runner schedule` commands ask of schedules, wherever they live.

Two implementations: LocalSchedules (local.py), this machine's schedules kept in the run records and
run by `runner scheduler`; ClusterSchedules (cluster.py), a namespace's CronJobs. Both show a schedule
as the one ScheduleView (runner.records.schedule_view), so the commands choose an implementation once
and treat both alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from runner.errors import UserError
from runner.records import RunRecord
from runner.records.schedule_view import ScheduleView
from runner.records.schedules import SlotRecord
from runner.spec import LoadedManifest
from runner.spec.model import Schedule


class ApplyResult(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # this machine: the snapshot changed
    UNCHANGED = "unchanged"  # this machine: the same manifest, backend and file as applied before
    CONFIGURED = "configured"  # a cluster: the CronJob was replaced, changed or not (kubectl's word)


@dataclass(frozen=True, kw_only=True)
class AppliedSchedule:
    """What apply did, for the commands to say: which schedule, created or changed, and where it runs.
    Its runs are not looked at (apply touches no run): `runner schedule list` shows them."""

    name: str
    result: ApplyResult
    backend: str  # where its runs go: process or docker on this machine, kubernetes on a cluster
    next_run: datetime | None = None  # this machine: its next run, in its zone (None while paused)
    namespace: str | None = None  # a cluster: the CronJob's namespace


class Schedules(Protocol):
    """Apply, list, pause, resume, trigger and delete schedules in one place (this machine, or one
    namespace of a cluster); a schedule is named by its job's name."""

    def apply(self, path: Path, backend: str | None = None) -> AppliedSchedule:
        """Create or update the schedule of the manifest at path (UserError without spec.schedule).
        backend: where its runs go, as `--backend` says it (None: the settings' default)."""
        ...

    def render(self, path: Path) -> list[dict[str, Any]]:
        """What apply would send, sending and building nothing (`--dry-run`); where nothing is sent,
        a UserError."""
        ...

    def list_schedules(self) -> list[ScheduleView]:
        """Every schedule, by name."""
        ...

    def get(self, name: str) -> ScheduleView:
        """One schedule; NotFoundError when there is none of that name."""
        ...

    def pause(self, name: str) -> object:
        """No slot starts a run until resume; runs under way go on. Returns the implementation's own
        account of the schedule (its record, its view), which the commands do not need."""
        ...

    def resume(self, name: str) -> object:
        """Slots start runs again (as pause, the implementation's own account)."""
        ...

    def trigger(self, name: str) -> RunRecord:
        """Start a run of the schedule now, whatever its slots, pause and concurrency; the run's record."""
        ...

    def delete(self, name: str) -> object:
        """Delete the schedule; its runs, finished or under way, stay (as pause, the implementation's
        own account of what was deleted)."""
        ...

    def history(self, name: str, limit: int | None = None) -> list[SlotRecord]:
        """What became of the schedule's slots and triggers, newest first; where no history is kept, a
        UserError."""
        ...


def require_schedule(loaded: LoadedManifest) -> Schedule:
    """The manifest's spec.schedule; a UserError saying how to add one when it has none."""
    timing = loaded.manifest.spec.schedule
    if timing is None:
        raise UserError(
            f"{loaded.path}: the manifest has no spec.schedule, so there is nothing to schedule",
            hint='add one, e.g. `schedule: {cron: "0 2 * * *", timeZone: Europe/Berlin}` under spec; '
            "`runner submit` runs a job once",
        )
    return timing
