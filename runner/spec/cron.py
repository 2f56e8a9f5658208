"""Cron schedules as Kubernetes CronJobs accept them, and IANA time-zone names.

``parse_cron`` follows the standard 5-field parser of robfig/cron (which the
Kubernetes CronJob controller uses): ``*``, ``?`` (day fields only), numbers,
ranges ``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (meaning ``a-max/n``),
lists, month and weekday names, and the macros ``@yearly``, ``@annually``,
``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly``.
``@every``, a seconds field and ``TZ=``/``CRON_TZ=`` prefixes are rejected.

Like robfig/cron, day-of-week is 0-6 (0 is Sunday): Kubernetes rejects Vixie cron's ``7``.

When a schedule fires, in a time zone and across daylight-saving changes, is runner.spec.fire_times:
``next_fire`` and ``last_fire_at_or_before``.
"""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_FIELD_NAMES = "minute hour day-of-month month day-of-week"

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_WEEKDAY_NAMES = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}

_MAX_LENGTH = 1000  # longer expressions are rejected outright

# How far next_after looks ahead. Eight years always contain a 29 February.
_SEARCH_DAYS = 366 * 9


@dataclass(frozen=True)
class _Field:
    """The rules for one of the five fields.

    ``low``-``high`` is what ``*`` and ``a/n`` cover; ``top`` is the largest value
    that may be written explicitly (7 for day-of-week, a second Sunday).
    """

    name: str
    low: int
    high: int
    top: int
    names: Mapping[str, int]
    allows_question_mark: bool
    what: str  # what a value of this field is, for messages


_FIELDS = (
    _Field("minute", 0, 59, 59, {}, False, "number"),
    _Field("hour", 0, 23, 23, {}, False, "number"),
    _Field("day-of-month", 1, 31, 31, {}, True, "number"),
    _Field("month", 1, 12, 12, _MONTH_NAMES, False, "number or month name (JAN-DEC)"),
    _Field("day-of-week", 0, 6, 6, _WEEKDAY_NAMES, True, "number or weekday name (SUN-SAT)"),
)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron schedule: the values each field allows.

    ``days_of_week`` uses 0-6 with 0 = Sunday. ``dom_restricted`` and
    ``dow_restricted`` say whether the day fields were anything but ``*``/``?``
    (``*/1`` counts as ``*``, ``*/2`` does not, as in robfig/cron); when both are
    restricted a day matches if *either* field does (cron's OR rule), otherwise
    it must match both.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool

    def matches(self, dt: datetime) -> bool:
        """Whether the schedule fires in the minute of ``dt``'s wall-clock fields (seconds ignored)."""
        return dt.minute in self.minutes and dt.hour in self.hours and self._matches_day(dt.date())

    def next_after(self, dt: datetime) -> datetime | None:
        """The first wall-clock minute strictly after ``dt`` at which the schedule fires.

        Works on ``dt``'s wall-clock fields and keeps its ``tzinfo``; DST gaps and
        folds are not resolved. Returns None if the schedule never fires (e.g.
        ``0 0 30 2 *``) or the answer would be past ``datetime.max``.
        """
        try:
            start = dt.replace(second=0, microsecond=0) + timedelta(minutes=1)
            day = start.date()
            for _ in range(_SEARCH_DAYS):
                if self._matches_day(day):
                    earliest = start.time() if day == start.date() else time(0, 0)
                    found = self._first_time_from(earliest)
                    if found is not None:
                        return datetime.combine(day, found, tzinfo=dt.tzinfo)
                day += timedelta(days=1)
        except OverflowError:
            return None
        return None

    def previous_at_or_before(self, dt: datetime) -> datetime | None:
        """The last wall-clock minute at or before ``dt`` (its minute included) at which the schedule fires.

        The mirror of ``next_after``: wall-clock fields only, ``tzinfo`` kept. None if the schedule
        never fires before ``dt`` within the search range, or the answer would be before ``datetime.min``.
        """
        try:
            end = dt.replace(second=0, microsecond=0)
            day = end.date()
            for _ in range(_SEARCH_DAYS):
                if self._matches_day(day):
                    latest = end.time() if day == end.date() else time(23, 59)
                    found = self._last_time_until(latest)
                    if found is not None:
                        return datetime.combine(day, found, tzinfo=dt.tzinfo)
                day -= timedelta(days=1)
        except OverflowError:
            return None
        return None

    def _matches_day(self, day: date) -> bool:
        """Whether ``day`` passes the month and the day-of-month/day-of-week rules."""
        if day.month not in self.months:
            return False
        dom_match = day.day in self.days_of_month
        dow_match = day.isoweekday() % 7 in self.days_of_week
        if self.dom_restricted and self.dow_restricted:
            return dom_match or dow_match
        return dom_match and dow_match

    def _first_time_from(self, earliest: time) -> time | None:
        """The first allowed hour:minute at or after ``earliest`` on a matching day."""
        for hour in sorted(h for h in self.hours if h >= earliest.hour):
            low = earliest.minute if hour == earliest.hour else 0
            minutes = [m for m in self.minutes if m >= low]
            if minutes:
                return time(hour, min(minutes))
        return None

    def _last_time_until(self, latest: time) -> time | None:
        """The last allowed hour:minute at or before ``latest`` on a matching day."""
        for hour in sorted((h for h in self.hours if h <= latest.hour), reverse=True):
            high = latest.minute if hour == latest.hour else 59
            minutes = [m for m in self.minutes if m <= high]
            if minutes:
                return time(hour, max(minutes))
        return None


def parse_cron(expr: str) -> CronSchedule:
    """Parse a 5-field cron expression or macro, raising ``ValueError`` that names the bad field."""
    if not isinstance(expr, str):
        raise ValueError(f"expected a cron expression like '0 3 * * *', got {expr!r}")
    if len(expr) > _MAX_LENGTH:
        raise ValueError(f"expected a cron expression of at most {_MAX_LENGTH} characters, got {len(expr)}")
    text = expr.strip()
    if re.match(r"(CRON_)?TZ=", text):
        raise ValueError(
            f"time-zone prefixes are not supported in cron expressions, got {expr!r}; "
            "set the schedule's timeZone field instead"
        )
    if text.startswith("@"):
        text = _expand_macro(text)
    fields = text.split()
    if len(fields) != 5:
        message = f"expected 5 fields ({_FIELD_NAMES}), got {len(fields)}"
        if len(fields) == 6:
            message += "; a seconds field is not supported"
        raise ValueError(message)
    parsed = [_parse_field(text, rules) for text, rules in zip(fields, _FIELDS, strict=True)]
    (minutes, _), (hours, _), (doms, dom_star), (months, _), (dows, dow_star) = parsed
    return CronSchedule(
        expression=expr,
        minutes=minutes,
        hours=hours,
        days_of_month=doms,
        months=months,
        days_of_week=frozenset(d % 7 for d in dows),
        dom_restricted=not dom_star,
        dow_restricted=not dow_star,
    )


def _expand_macro(text: str) -> str:
    """Replace a macro like ``@daily`` with its 5-field equivalent."""
    if text.startswith("@every"):
        raise ValueError(f"'@every' intervals are not supported, got {text!r}; use a 5-field cron expression")
    if text not in _MACROS:
        known = ", ".join(_MACROS)
        raise ValueError(f"unknown cron macro {text!r}; expected one of {known}")
    return _MACROS[text]


class _ItemError(ValueError):
    """A problem with one item of a field; ``_parse_field`` adds which field."""


def _parse_field(text: str, rules: _Field) -> tuple[frozenset[int], bool]:
    """Parse one field into its allowed values and whether it counts as ``*`` for day matching."""
    values: set[int] = set()
    star = False
    for item in text.split(","):
        try:
            item_values, item_star = _parse_item(item, rules)
        except _ItemError as error:
            raise ValueError(f"{rules.name} field {text!r}: {error}") from None
        values |= item_values
        star = star or item_star
    return frozenset(values), star


def _parse_item(item: str, rules: _Field) -> tuple[set[int], bool]:
    """Parse one list item (``*``, ``5``, ``1-5``, ``*/15``, ``MON-FRI/2``) of a field.

    Like robfig/cron, an item counts as ``*`` when it is ``*`` or ``?`` with a step of 1.
    """
    if not item:
        raise _ItemError("empty list item")
    range_part, *steps = item.split("/")
    if len(steps) > 1:
        raise _ItemError(f"too many '/' in {item!r}")
    step = _parse_value(steps[0], item, rules, names=False) if steps else 1
    if step == 0:
        raise _ItemError(f"step in {item!r} must be at least 1")
    if range_part in ("*", "?"):
        if range_part == "?" and not rules.allows_question_mark:
            raise _ItemError("'?' is only allowed in the day-of-month and day-of-week fields")
        return set(range(rules.low, rules.high + 1, step)), step == 1
    low, high = _parse_range(range_part, item, rules)
    if steps and "-" not in range_part:
        high = rules.high  # "a/n" means "a-max/n"
    if low > high:
        raise _ItemError(f"range {item!r} starts after it ends")
    return set(range(low, high + 1, step)), False


def _parse_range(text: str, item: str, rules: _Field) -> tuple[int, int]:
    """Parse ``a`` or ``a-b`` (numbers or names), checking each end is in range."""
    bounds = text.split("-")
    if len(bounds) > 2:
        raise _ItemError(f"too many '-' in {item!r}")
    ends = [_parse_value(bound, item, rules, names=True) for bound in bounds]
    for value in ends:
        if not rules.low <= value <= rules.top:
            raise _ItemError(f"{value} is out of range {rules.low}-{rules.top}")
    return ends[0], ends[-1]


def _parse_value(token: str, item: str, rules: _Field, *, names: bool) -> int:
    """Read a decimal number, or (when ``names``) a case-insensitive month/weekday name."""
    if not token:
        raise _ItemError(f"missing a number in {item!r}")
    if names and token.lower() in rules.names:
        return rules.names[token.lower()]
    if token.isascii() and token.isdigit():
        return int(token)
    expected = rules.what if names else "number"
    raise _ItemError(f"{token!r} is not a {expected}")


# ---------------------------------------------------------------------- time zones


# Each part of a zone name, as Kubernetes checks it: 1-14 of these characters, not starting with '-'.
_ZONE_PART_RE = re.compile(r"[A-Za-z0-9._+][A-Za-z0-9._+-]{0,13}")
_ZONE_EXAMPLE = "expected an IANA time zone name like 'Europe/Berlin'"


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone ``zoneinfo`` knows, else raise ``ValueError``.

    Like Kubernetes, rejects "", "Local" and file paths. Unknown names get a
    did-you-mean hint (``"Asia/Seol"`` and ``"asia/seoul"`` -> ``'Asia/Seoul'``).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{_ZONE_EXAMPLE}, got {name!r}")
    if name.lower() == "local":
        raise ValueError(f"{_ZONE_EXAMPLE}, not {name!r}: the zone must be explicit")
    parts = name.split("/")
    if name.startswith("/") or any(part in (".", "..") for part in parts):
        raise ValueError(f"{_ZONE_EXAMPLE}, not a file path, got {name!r}")
    if not all(_ZONE_PART_RE.fullmatch(part) for part in parts) or not _zone_loads(name):
        message = f"unknown time zone {name!r}"
        suggestion = _suggest_zone(name)
        raise ValueError(f"{message}; did you mean {suggestion!r}?" if suggestion else message)
    return name


def _zone_loads(name: str) -> bool:
    """Whether ``zoneinfo`` can load ``name`` as a time zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@functools.cache
def _known_zones() -> dict[str, str]:
    """Every available zone name, keyed by its lower-case form."""
    return {zone.lower(): zone for zone in sorted(zoneinfo.available_timezones())}


def _suggest_zone(name: str) -> str | None:
    """The known zone ``name`` most likely meant: same name in other case, else a close spelling."""
    zones = _known_zones()
    key = name.lower().replace(" ", "_")
    if key in zones:
        return zones[key]
    close = difflib.get_close_matches(key, zones, n=1)
    if close:
        return zones[close[0]]
    by_city = {zone.rsplit("/", 1)[-1]: zone for zone in reversed(zones)}
    close = difflib.get_close_matches(key.rsplit("/", 1)[-1], by_city, n=1)
    return zones[by_city[close[0]]] if close else None
