"""This machine's schedules: LocalSchedules, the Schedules of the process and docker backends.

A schedule is a manifest with ``spec.schedule``, applied once: its resolved manifest is kept as a
snapshot in the run records' database (runner.records.schedules), and every run of it (a due slot, or
a trigger by hand) is an ordinary run planned from that snapshot, with relative paths resolved
against the manifest's directory and the ``runner.dev/schedule`` label. Editing the file changes
nothing until it is applied again. The scheduler loop (scheduler.py) starts the due slots, as slots.py
decides them; this module is what the ``runner schedule`` commands call. Cluster schedules are
CronJobs (cluster.py) and are not kept here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from runner.backends import choose_backend, get_backend
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import UserError
from runner.records import RunRecord
from runner.records.schedule_view import ScheduleView
from runner.records.schedules import ScheduleRecord, ScheduleRecords, SlotRecord
from runner.service.plan import plan_run
from runner.service.runs import RunService
from runner.service.schedules.base import AppliedSchedule, ApplyResult, require_schedule
from runner.service.schedules.slots import instant, next_slot
from runner.spec import LoadedManifest, load_manifest, parse_manifest
from runner.spec.labels import SCHEDULE_LABEL


class Launcher(Protocol):
    """How schedules start, find and stop their runs; RunLauncher does it through RunService."""

    def launch(self, schedule: ScheduleRecord) -> RunRecord:
        """Start a run of the schedule from its snapshot, labelled with the schedule's name."""
        ...

    def active_runs(self, schedule: str) -> list[RunRecord]:
        """The schedule's runs that have not ended, as they stand now."""
        ...

    def cancel(self, run: RunRecord) -> None:
        """Ask a run to stop, without waiting for it to end."""
        ...

    def find(self, run_id: str) -> RunRecord | None:
        """A run as it stands now, or None if it is gone."""
        ...


class RunLauncher:
    """The Launcher of real runs: RunService on the schedule's backend."""

    def __init__(self, runs: RunService, progress: Callable[[str], None] = lambda message: None) -> None:
        self.runs = runs
        self.progress = progress

    def launch(self, schedule: ScheduleRecord) -> RunRecord:
        return self.runs.submit_manifest(
            snapshot(schedule),
            schedule.backend,
            extra_labels={SCHEDULE_LABEL: schedule.name},
            progress=self.progress,
        )

    def active_runs(self, schedule: str) -> list[RunRecord]:
        labelled = [
            run
            for run in self.runs.records.list(active_only=True)
            if run.labels.get(SCHEDULE_LABEL) == schedule
        ]
        return [run for run in map(self.runs.refresh, labelled) if not run.state.terminal]

    def cancel(self, run: RunRecord) -> None:
        self.runs.cancel(run.id, wait=False)

    def find(self, run_id: str) -> RunRecord | None:
        run = self.runs.records.find(run_id)
        return None if run is None else self.runs.refresh(run)


def snapshot(schedule: ScheduleRecord) -> LoadedManifest:
    """The schedule's manifest as applied, loaded as if from its file (for relative paths)."""
    manifest, text = parse_manifest(schedule.manifest_text, schedule.manifest_path)
    path = Path(schedule.base_dir) / Path(schedule.manifest_path).name
    return LoadedManifest(manifest=manifest, path=path, text=text)


class LocalSchedules:
    """The Schedules of this machine: schedule records, whose runs `runner scheduler` (scheduler.py)
    and trigger start through the Launcher. apply_record is apply with the record it saved."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, launcher: Launcher | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self.runs = RunService(settings)
        self.launcher: Launcher = launcher or RunLauncher(self.runs)
        self._records: ScheduleRecords | None = None

    @property
    def records(self) -> ScheduleRecords:
        if self._records is None:
            self._records = ScheduleRecords(self.settings.database)
        return self._records

    def apply(self, path: Path, backend: str | None = None) -> AppliedSchedule:
        """Create or update the schedule of the manifest at path (apply_record), said for the commands."""
        record, result = self.apply_record(path, backend)
        return AppliedSchedule(
            name=record.name, result=result, backend=record.backend, next_run=self.next_run(record)
        )

    def apply_record(self, path: Path, backend: str | None = None) -> tuple[ScheduleRecord, ApplyResult]:
        """Create or update the schedule of the manifest at path, from a snapshot of it taken now; the
        schedule's record as saved, and whether it was created, updated or found unchanged.

        Refuses a manifest without spec.schedule and the kubernetes backend (a CronJob's business).
        A changed cron or time zone, or a lifted suspend, counts slots from now on.
        """
        loaded = load_manifest(path)
        timing = require_schedule(loaded)
        wanted = backend or self.settings.backend
        if wanted == "kubernetes":
            raise UserError(
                "schedules on the kubernetes backend are CronJobs on the cluster, not kept on this machine"
            )
        chosen = choose_backend(wanted)
        plan = plan_run(loaded, {})
        get_backend(chosen).check(plan, self.settings)  # inputs, context and GPUs: refuse now, not at 2am
        now = self.clock.time()
        name = loaded.manifest.name
        fresh = ScheduleRecord(
            name=name,
            backend=chosen,
            manifest_path=str(loaded.path),
            manifest_text=plan.manifest_text,
            base_dir=str(loaded.base_dir),
            cron=timing.cron,
            time_zone=timing.time_zone,
            concurrency=timing.concurrency,
            starting_deadline=timing.starting_deadline,
            suspend=timing.suspend,
            paused=False,
            created=now,
            updated=now,
            since=now,
        )
        with self.records.exclusive():
            existing = self.records.find(name)
            if existing is None:
                return self.records.save(fresh), ApplyResult.CREATED
            if (existing.backend, existing.manifest_path, existing.manifest_text) == (
                fresh.backend,
                fresh.manifest_path,
                fresh.manifest_text,
            ):
                return existing, ApplyResult.UNCHANGED
            retimed = (existing.cron, existing.time_zone) != (fresh.cron, fresh.time_zone)
            unsuspended = existing.suspend and not fresh.suspend
            updated = replace(
                fresh,
                paused=existing.paused,
                created=existing.created,
                since=now if retimed or unsuspended else existing.since,
                last_slot=existing.last_slot,
                last_run_id=existing.last_run_id,
                last_outcome=existing.last_outcome,
                last_message=existing.last_message,
            )
            return self.records.save(updated), ApplyResult.UPDATED

    def render(self, path: Path) -> list[dict[str, Any]]:
        """Nothing is sent anywhere: a UserError (`--dry-run` is for --backend kubernetes)."""
        raise UserError(
            f"{path}: a schedule on this machine is not sent anywhere, so there is nothing to render",
            hint="--dry-run applies to --backend kubernetes only",
        )

    def list_schedules(self) -> list[ScheduleView]:
        """Every schedule on this machine, by name."""
        return [self._view(record) for record in self.records.all()]

    def get(self, name: str) -> ScheduleView:
        return self._view(self.records.get(name))

    def history(self, name: str, limit: int | None = None) -> list[SlotRecord]:
        """The schedule's handled slots and triggers, newest first."""
        self.records.get(name)
        return self.records.slots(name, limit)

    def pause(self, name: str) -> ScheduleRecord:
        """No slot runs until resume; runs under way go on."""
        record = self.records.get(name)
        if record.paused:
            return record
        return self.records.update(name, paused=True, updated=self.clock.time())

    def resume(self, name: str) -> ScheduleRecord:
        """Slots run again from now on; the ones that passed while paused do not."""
        record = self.records.get(name)
        if record.suspend:
            raise UserError(
                f"schedule {name!r} is suspended by its manifest (spec.schedule.suspend: true)",
                hint=f"set suspend to false and apply {record.manifest_path} again",
            )
        if not record.paused:
            return record
        now = self.clock.time()
        return self.records.update(name, paused=False, since=now, updated=now)

    def trigger(self, name: str) -> RunRecord:
        """Start a run now, as a slot would but whatever its concurrency; the cron slots are untouched."""
        record = self.records.get(name)
        run = self.launcher.launch(record)
        self.records.record_trigger(name, self.clock.time(), run.id)
        return run

    def delete(self, name: str) -> ScheduleRecord:
        """Forget the schedule and its slot history; its runs, finished or under way, stay."""
        return self.records.delete(name)

    def next_run(self, record: ScheduleRecord) -> datetime | None:
        """When the schedule runs next, in its zone; None while paused or suspended."""
        upcoming = next_slot(record, instant(self.clock.time()))
        return None if upcoming is None else upcoming.astimezone(ZoneInfo(record.time_zone))

    def _view(self, record: ScheduleRecord) -> ScheduleView:
        last = None if record.last_run_id is None else self.launcher.find(record.last_run_id)
        return ScheduleView(
            name=record.name,
            backend=record.backend,
            job=record.name,  # a schedule is named after its manifest's job
            cron=record.cron,
            time_zone=record.time_zone,
            concurrency=record.concurrency,
            suspended=record.suspend,
            next_run=self.next_run(record),
            last_run=record.last_run_id,
            last_result=None if last is None else last.state,
            paused_by_hand=record.paused,
            manifest=record.manifest_path,
            last_run_created=None if last is None else instant(last.created),
            last_slot=None if record.last_slot is None else instant(record.last_slot),
            last_outcome=record.last_outcome,
        )
