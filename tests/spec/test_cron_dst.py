"""Cron schedules as instants in a time zone: daylight-saving gaps and folds, half-hour shifts, no DST.

Transitions used (2024): Europe/Berlin 31 Mar 02:00->03:00 and 27 Oct 03:00->02:00; America/New_York
10 Mar 02:00->03:00 and 3 Nov 02:00->01:00; Australia/Lord_Howe 7 Apr 02:00->01:30 and 6 Oct
02:00->02:30; Asia/Seoul has none.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.spec.cron import CronSchedule, parse_cron
from runner.spec.fire_times import follows_the_clock, last_fire_at_or_before, next_fire


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(expr: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every fire instant in (start, end], by repeated next_fire."""
    schedule = parse_cron(expr)
    found: list[datetime] = []
    moment = next_fire(schedule, start, zone)
    while moment is not None and moment <= end:
        found.append(moment)
        moment = next_fire(schedule, moment, zone)
    return found


def local(instants: list[datetime], zone: str) -> list[str]:
    return [moment.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M%z") for moment in instants]


# ------------------------------------------------------------------ fixed times


def test_nightly_in_berlin_spring_forward_fires_once_right_after_the_gap() -> None:
    nights = fires("30 2 * * *", "Europe/Berlin", utc(2024, 3, 29), utc(2024, 4, 2))
    assert nights == [
        utc(2024, 3, 29, 1, 30),
        utc(2024, 3, 30, 1, 30),
        utc(2024, 3, 31, 1),
        utc(2024, 4, 1, 0, 30),
    ]
    assert local(nights, "Europe/Berlin")[2] == "03-31 03:00+0200"


def test_nightly_in_berlin_fall_back_fires_at_the_first_occurrence_only() -> None:
    nights = fires("30 2 * * *", "Europe/Berlin", utc(2024, 10, 26), utc(2024, 10, 29))
    assert nights == [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert local(nights, "Europe/Berlin") == ["10-26 02:30+0200", "10-27 02:30+0200", "10-28 02:30+0100"]


def test_every_minute_of_a_skipped_hour_collapses_into_one_fire() -> None:
    # Minutes 0, 15, 30 and 45 of 02:xx all fall in the gap: one fire at 03:00, then the 03:xx ones.
    found = fires("*/15 2,3 31 3 *", "Europe/Berlin", utc(2024, 3, 30), utc(2024, 4, 1))
    assert local(found, "Europe/Berlin") == [
        "03-31 03:00+0200",
        "03-31 03:15+0200",
        "03-31 03:30+0200",
        "03-31 03:45+0200",
    ]


def test_new_york_gap_and_fold() -> None:
    spring = fires("0 2 * * *", "America/New_York", utc(2024, 3, 9), utc(2024, 3, 12))
    assert local(spring, "America/New_York") == ["03-09 02:00-0500", "03-10 03:00-0400", "03-11 02:00-0400"]
    fall = fires("30 1 * * *", "America/New_York", utc(2024, 11, 2), utc(2024, 11, 5))
    assert fall == [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]


def test_lord_howe_half_hour_gap_and_fold() -> None:
    spring = fires("0 2 * * *", "Australia/Lord_Howe", utc(2024, 10, 4, 12), utc(2024, 10, 7, 12))
    assert local(spring, "Australia/Lord_Howe") == [
        "10-05 02:00+1030",
        "10-06 02:30+1100",
        "10-07 02:00+1100",
    ]
    fall = fires("45 1 * * *", "Australia/Lord_Howe", utc(2024, 4, 5, 12), utc(2024, 4, 8, 12))
    assert local(fall, "Australia/Lord_Howe") == ["04-06 01:45+1100", "04-07 01:45+1100", "04-08 01:45+1030"]


def test_seoul_has_no_changes() -> None:
    found = fires("0 2 * * *", "Asia/Seoul", utc(2024, 3, 1), utc(2024, 12, 31))
    assert all(moment.hour == 17 and moment.minute == 0 for moment in found)  # 02:00 KST is 17:00 UTC
    assert len(found) == 305  # every day from 2 March to 31 December


# -------------------------------------------------------- schedules on the clock


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", utc(2024, 3, 30, 20)),
        ("Europe/Berlin", utc(2024, 10, 26, 20)),
        ("America/New_York", utc(2024, 3, 10, 3)),
        ("America/New_York", utc(2024, 11, 3, 3)),
        ("Asia/Seoul", utc(2024, 3, 30, 20)),
    ],
)
@pytest.mark.parametrize("expr", ["0 * * * *", "30 * * * *", "@hourly"])
def test_hourly_stays_hourly_across_one_hour_changes(expr: str, zone: str, start: datetime) -> None:
    found = fires(expr, zone, start, start + timedelta(hours=10))
    assert len(found) == 10
    assert {later - earlier for earlier, later in itertools.pairwise(found)} == {timedelta(hours=1)}


def test_hourly_in_lord_howe_follows_the_clock_across_half_hour_changes() -> None:
    spring = fires("0 * * * *", "Australia/Lord_Howe", utc(2024, 10, 5, 13), utc(2024, 10, 5, 17))
    # 02:00 never shows on the clock that night (02:00 -> 02:30), so it is skipped: 90 minutes apart.
    assert local(spring, "Australia/Lord_Howe") == [
        "10-06 00:00+1030",
        "10-06 01:00+1030",
        "10-06 03:00+1100",
        "10-06 04:00+1100",
    ]
    fall = fires("30 * * * *", "Australia/Lord_Howe", utc(2024, 4, 6, 12), utc(2024, 4, 6, 17))
    # 01:30 shows twice (02:00 -> 01:30): it fires at both, 30 minutes apart.
    assert local(fall, "Australia/Lord_Howe") == [
        "04-06 23:30+1100",
        "04-07 00:30+1100",
        "04-07 01:30+1100",
        "04-07 01:30+1030",
        "04-07 02:30+1030",
        "04-07 03:30+1030",
    ]


def test_which_schedules_follow_the_clock() -> None:
    assert follows_the_clock(parse_cron("@hourly"))
    assert follows_the_clock(parse_cron("* 2 * * *"))
    assert not follows_the_clock(parse_cron("0 */6 * * *"))
    assert not follows_the_clock(parse_cron("@daily"))


# ---------------------------------------------------------- last fire at or before


@pytest.mark.parametrize(
    ("expr", "zone", "at", "expected"),
    [
        ("30 2 * * *", "Europe/Berlin", utc(2024, 3, 31, 1), utc(2024, 3, 31, 1)),  # at the gap's fire
        ("30 2 * * *", "Europe/Berlin", utc(2024, 3, 31, 0, 59), utc(2024, 3, 30, 1, 30)),
        # 02:10 at the second reading: 02:30 already fired at its first reading, 40 minutes before.
        ("30 2 * * *", "Europe/Berlin", utc(2024, 10, 27, 1, 10), utc(2024, 10, 27, 0, 30)),
        ("30 * * * *", "Europe/Berlin", utc(2024, 10, 27, 1, 10), utc(2024, 10, 27, 0, 30)),
        ("30 * * * *", "Europe/Berlin", utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 1, 30)),
        ("30 * * * *", "Europe/Berlin", utc(2024, 3, 31, 1, 10), utc(2024, 3, 31, 0, 30)),
        ("0 2 * * *", "Asia/Seoul", utc(2024, 6, 1, 16, 59), utc(2024, 5, 31, 17)),
        ("0 0 29 2 *", "UTC", utc(2027, 1, 1), utc(2024, 2, 29)),
    ],
)
def test_last_fire_at_or_before(expr: str, zone: str, at: datetime, expected: datetime) -> None:
    assert last_fire_at_or_before(parse_cron(expr), at, zone) == expected


def test_never_and_naive() -> None:
    assert next_fire(parse_cron("0 0 30 2 *"), utc(2024, 1, 1), "UTC") is None
    assert last_fire_at_or_before(parse_cron("0 0 30 2 *"), utc(2024, 1, 1), "UTC") is None
    assert next_fire(parse_cron("0 0 1 1 *"), utc(9999, 6, 1), "UTC") is None
    with pytest.raises(ValueError, match="aware"):
        next_fire(parse_cron("@daily"), datetime(2024, 1, 1), "UTC")


def test_previous_at_or_before_on_the_wall_clock() -> None:
    schedule = parse_cron("*/15 9-17 * * MON-FRI")
    assert schedule.previous_at_or_before(datetime(2024, 3, 18, 9, 14, 59)) == datetime(2024, 3, 18, 9, 0)
    assert schedule.previous_at_or_before(datetime(2024, 3, 18, 9, 15)) == datetime(2024, 3, 18, 9, 15)
    assert schedule.previous_at_or_before(datetime(2024, 3, 18, 8, 0)) == datetime(2024, 3, 15, 17, 45)
    assert parse_cron("0 0 2 1 *").previous_at_or_before(datetime(1, 1, 1, 12)) is None


# ---------------------------------------------- against a minute-by-minute model

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Seoul"]
TRANSITIONS = [
    utc(2024, 3, 31, 1),
    utc(2024, 10, 27, 1),
    utc(2024, 3, 10, 7),
    utc(2024, 11, 3, 6),
    utc(2024, 4, 6, 15),
    utc(2024, 10, 5, 15, 30),
]
EXPRESSIONS = [
    "30 2 * * *",
    "0 1-3 * * *",
    "*/20 * * * *",
    "@hourly",
    "45 1,2 * * *",
    "* 2 * * *",
    "0 */2 * * *",
]


def model_fires(schedule: CronSchedule, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The module docstring's rules, by brute force over every minute of (start, end]."""
    tz = ZoneInfo(zone)
    minutes = []
    moment = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment <= end:
        minutes.append(moment)
        moment += timedelta(minutes=1)
    readings = [(m, m.astimezone(tz).replace(tzinfo=None, fold=0)) for m in minutes]
    if follows_the_clock(schedule):
        return [m for m, wall in readings if schedule.matches(wall)]
    found: set[datetime] = set()
    wall = readings[0][1]
    while wall <= readings[-1][1]:
        if schedule.matches(wall):
            shown = [m for m, reading in readings if reading == wall]
            if shown:
                found.add(shown[0])
            else:  # skipped by the clock: the first instant whose reading is later
                found.add(next(m for m, reading in readings if reading > wall))
        wall += timedelta(minutes=1)
    return sorted(found)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ZONES),
    st.sampled_from(TRANSITIONS),
    st.integers(-180, 180),
)
def test_next_fire_matches_the_model(expr: str, zone: str, transition: datetime, shift: int) -> None:
    schedule = parse_cron(expr)
    start = transition + timedelta(minutes=shift)
    end = start + timedelta(hours=5)
    # The model sees only its window; keep the first hour out of the comparison for its gap rule.
    expected = [m for m in model_fires(schedule, zone, start - timedelta(hours=3), end) if m > start]
    assert fires(expr, zone, start, end) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(ZONES),
    st.sampled_from(TRANSITIONS),
    st.integers(-240, 240),
    st.integers(0, 59),
)
def test_last_and_next_fire_agree(
    expr: str, zone: str, transition: datetime, minutes: int, seconds: int
) -> None:
    schedule = parse_cron(expr)
    at = transition + timedelta(minutes=minutes, seconds=seconds)
    last = last_fire_at_or_before(schedule, at, zone)
    following = next_fire(schedule, at, zone)
    assert last is not None and following is not None
    assert last <= at < following
    assert next_fire(schedule, last, zone) == following  # nothing fires in between
    assert last_fire_at_or_before(schedule, following - timedelta(seconds=1), zone) == last


def test_the_kubernetes_rule_skips_a_jumped_time_and_repeats_a_doubled_one() -> None:
    """A CronJob (robfig/cron v3) walks the wall clock: no 02:30 on the spring-forward night, two on the
    fall-back night; the runner's own rule gives one on each."""
    from runner.spec.cron import parse_cron
    from runner.spec.fire_times import last_fire_at_or_before, next_fire

    nightly = parse_cron("30 2 * * *")
    spring = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # the evening before Berlin jumps 02:00 -> 03:00
    assert next_fire(nightly, spring, "Europe/Berlin", rule="kubernetes") == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )
    assert next_fire(nightly, spring, "Europe/Berlin") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST; the clock shows 02:30 again at 01:30 UTC
    assert next_fire(nightly, first, "Europe/Berlin", rule="kubernetes") == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )
    assert next_fire(nightly, first, "Europe/Berlin") == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    late = datetime(2026, 10, 25, 1, 45, tzinfo=UTC)
    assert last_fire_at_or_before(nightly, late, "Europe/Berlin", rule="kubernetes") == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )
