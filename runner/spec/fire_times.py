"""When a cron schedule fires in an IANA time zone, across daylight-saving changes.

``next_fire`` and ``last_fire_at_or_before`` turn a schedule and an IANA zone into instants (aware
UTC datetimes). Schedules are read in wall-clock time, and daylight-saving changes follow Vixie
cron's rule, so that neither a nightly job nor an hourly one surprises anyone:

* A schedule at fixed times (its hour and minute fields both restricted, like ``30 2 * * *`` or
  ``0 */6 * * *``) fires once per matching wall-clock time. A time the clock skips (02:30 on the
  night Berlin jumps from 02:00 to 03:00) fires once, at the first instant after the jump (03:00
  local); a time the clock shows twice (02:30 on the night it falls back) fires at its first
  occurrence only, never twice.
* A schedule that follows the clock (every hour, ``*`` in the hour field, or every minute, ``*``
  in the minute field) fires whenever the clock reads a matching time: a skipped minute is skipped,
  a repeated one fires again. Across a one-hour change an hourly job so stays sixty minutes apart;
  across Lord Howe Island's half-hour change it is thirty or ninety minutes apart.

Kubernetes' CronJob controller (robfig/cron v3) follows the clock for every schedule: a nightly 02:30
is skipped on the night the clock jumps over it and runs twice on the night it shows 02:30 twice.
``rule="kubernetes"`` gives that behaviour, for saying when a CronJob fires next.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from runner.spec.cron import CronSchedule

__all__ = ["Rule", "follows_the_clock", "last_fire_at_or_before", "next_fire"]

_MINUTE = timedelta(minutes=1)
# A bound on the steps of one search: each step passes a matching minute or a zone transition.
_MAX_STEPS = 10_000


def follows_the_clock(schedule: CronSchedule) -> bool:
    """Whether the schedule fires every hour or every minute, and so follows the clock across changes.

    Such schedules fire whenever the wall clock reads a matching time (see the module docstring);
    the others fire once per matching wall-clock time, whatever the clock does that night.
    """
    return len(schedule.hours) == 24 or len(schedule.minutes) == 60


Rule = Literal["cron", "kubernetes"]


def next_fire(schedule: CronSchedule, after: datetime, zone: str, rule: Rule = "cron") -> datetime | None:
    """The first instant strictly after ``after`` (aware) at which the schedule fires in ``zone``.

    Returns an aware UTC datetime, or None if the schedule never fires again. ``rule`` picks the
    daylight-saving behaviour: this runner's scheduler (cron) or a Kubernetes CronJob's.
    """
    tz = zoneinfo.ZoneInfo(zone)
    start = _utc(after)
    try:
        if rule == "kubernetes" or follows_the_clock(schedule):
            return _next_on_the_clock(schedule, start, tz)
        return _next_at_fixed_times(schedule, start, tz)
    except OverflowError:
        return None


def last_fire_at_or_before(
    schedule: CronSchedule, at: datetime, zone: str, rule: Rule = "cron"
) -> datetime | None:
    """The last instant at or before ``at`` (aware) at which the schedule fires in ``zone``.

    Returns an aware UTC datetime, or None if the schedule never fired before ``at``.
    """
    tz = zoneinfo.ZoneInfo(zone)
    end = _utc(at)
    try:
        if rule == "kubernetes" or follows_the_clock(schedule):
            return _last_on_the_clock(schedule, end, tz)
        return _last_at_fixed_times(schedule, end, tz)
    except OverflowError:
        return None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _wall(moment: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """What the clock in ``tz`` reads at ``moment``, as a naive datetime."""
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def _offset(moment: datetime, tz: zoneinfo.ZoneInfo) -> timedelta:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _fixed_instant(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The instant a fixed-time schedule fires for ``wall``: its first occurrence, or the end of a gap."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == wall:  # the clock shows this time (once, or first of twice)
        return first
    # In a gap, fold=1 reads the wall with the offset after the change: an instant before the change;
    # fold=0 with the offset before it: an instant after. The change lies between them.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return _first_change(before, first, tz)


def _first_change(low: datetime, high: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first instant in (low, high] whose UTC offset differs from low's, to the second.

    Assumes the offset at ``high`` differs from the offset at ``low`` (one change in between).
    """
    offset = _offset(low, tz)
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), tz) == offset:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def _next_at_fixed_times(schedule: CronSchedule, after: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    # Mapping each matching wall time to its instant keeps their order, so the first matching wall
    # time from the clock's reading at `after` whose instant lies after `after` is the answer.
    wall: datetime | None = _wall(after, tz).replace(second=0, microsecond=0) - _MINUTE
    for _ in range(_MAX_STEPS):
        wall = schedule.next_after(wall) if wall is not None else None
        if wall is None:
            return None
        instant = _fixed_instant(wall, tz)
        if instant > after:
            return instant
    return None


def _last_at_fixed_times(schedule: CronSchedule, at: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    local = at.astimezone(tz)
    wall: datetime | None = _wall(at, tz)
    if local.fold and wall is not None:
        # At the second reading of a repeated hour, the rest of it was already read once, earlier.
        first = local.replace(fold=0).utcoffset()
        assert first is not None
        wall += first - _offset(at, tz)
    for _ in range(_MAX_STEPS):
        wall = schedule.previous_at_or_before(wall) if wall is not None else None
        if wall is None:
            return None
        instant = _fixed_instant(wall, tz)
        if instant <= at:
            return instant
        wall -= _MINUTE
    return None


def _next_on_the_clock(schedule: CronSchedule, after: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    # Walk forward in real time: the next matching reading under the current offset, unless the
    # offset changes before it; then start again at the change, under the new offset.
    moment, inclusive = after, False
    for _ in range(_MAX_STEPS):
        wall = _wall(moment, tz)
        start = wall.replace(second=0, microsecond=0) - (_MINUTE if inclusive else timedelta(0))
        found = schedule.next_after(start)
        if found is None:
            return None
        candidate = found.replace(tzinfo=UTC) - _offset(moment, tz)
        if _offset(candidate, tz) != _offset(moment, tz):
            moment, inclusive = _first_change(moment, candidate, tz), True
            continue
        if candidate > after:
            return candidate
        moment, inclusive = candidate, False
    return None


def _last_on_the_clock(schedule: CronSchedule, at: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    moment = at
    for _ in range(_MAX_STEPS):
        found = schedule.previous_at_or_before(_wall(moment, tz))
        if found is None:
            return None
        candidate = found.replace(tzinfo=UTC) - _offset(moment, tz)
        if _offset(candidate, tz) != _offset(moment, tz):
            change = _first_change(candidate, moment, tz)
            moment = change - timedelta(seconds=1)  # the last second under the earlier offset
            continue
        if candidate <= at:
            return candidate
        moment = candidate - _MINUTE
    return None
