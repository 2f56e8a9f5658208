"""The slots of this machine's schedules: which slot is due now, and what to do with it. Pure decisions
(a schedule record and the time in, a SlotDecision out) for the scheduler loop (scheduler.py), and
the next run that LocalSchedules shows.

A slot is an instant the cron expression fires at (runner.spec.cron's daylight-saving rules). The
scheduler keeps, per schedule, the instant up to which slots are handled: the last slot it handled,
or, when none is newer, when the schedule was created, resumed or given a new timing. Only the most
recent slot at or before now can be due: after downtime the schedule runs once for the newest slot
it missed, not once per missed slot. A due slot older than startingDeadline is not started but
recorded as missed, as a Kubernetes CronJob does.

What a due slot does depends on the schedule's concurrency and on the runs of it still active:
Allow starts another run; Forbid skips the slot (recorded as skipped) while one is active; Replace
cancels the active runs and starts the new one. A paused or suspended schedule has no due slots.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from runner.records.schedules import ScheduleRecord
from runner.spec.cron import CronSchedule, parse_cron
from runner.spec.fire_times import last_fire_at_or_before, next_fire


class Action(StrEnum):
    START = "start"  # launch a run for the slot
    REPLACE = "replace"  # cancel the active runs, then launch
    SKIP = "skip"  # Forbid and a run still active: record the slot as skipped
    MISS = "miss"  # past its startingDeadline: record the slot as missed


@dataclass(frozen=True)
class SlotDecision:
    """What to do with a due slot."""

    action: Action
    slot: datetime  # aware, UTC
    cancel: tuple[str, ...] = ()  # run ids to cancel first (Replace)
    reason: str = ""


@functools.lru_cache(maxsize=256)
def _cron(expression: str) -> CronSchedule:
    return parse_cron(expression)


def instant(seconds: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def handled_until(schedule: ScheduleRecord) -> datetime:
    """Slots at or before this instant are handled, or predate the schedule's current timing."""
    return instant(
        max(schedule.since, schedule.last_slot if schedule.last_slot is not None else schedule.since)
    )


def due_slot(schedule: ScheduleRecord, now: datetime) -> datetime | None:
    """The slot to handle now: the newest one at or before now, if it is not handled yet."""
    if not schedule.active:
        return None
    slot = last_fire_at_or_before(_cron(schedule.cron), now, schedule.time_zone)
    if slot is None or slot <= handled_until(schedule):
        return None
    return slot


def decide(schedule: ScheduleRecord, now: datetime, active_runs: Sequence[str]) -> SlotDecision | None:
    """What to do now, given the ids of the schedule's runs still active; None when no slot is due."""
    slot = due_slot(schedule, now)
    if slot is None:
        return None
    late = now - slot
    if late > timedelta(seconds=schedule.starting_deadline):
        return SlotDecision(
            Action.MISS,
            slot,
            reason=f"found {_duration(late)} late, past its startingDeadline of "
            f"{_duration(timedelta(seconds=schedule.starting_deadline))}",
        )
    if active_runs and schedule.concurrency == "Forbid":
        return SlotDecision(
            Action.SKIP, slot, reason=f"concurrency Forbid: {', '.join(active_runs)} still active"
        )
    if active_runs and schedule.concurrency == "Replace":
        return SlotDecision(
            Action.REPLACE,
            slot,
            cancel=tuple(active_runs),
            reason=f"concurrency Replace: cancelling {', '.join(active_runs)}",
        )
    return SlotDecision(Action.START, slot)


def next_slot(schedule: ScheduleRecord, now: datetime) -> datetime | None:
    """The first slot after now that is not handled yet (None when paused or it never fires again)."""
    if not schedule.active:
        return None
    return next_fire(_cron(schedule.cron), max(now, handled_until(schedule)), schedule.time_zone)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts) or "0s"
