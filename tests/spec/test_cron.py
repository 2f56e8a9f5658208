"""Tests for runner.spec.cron: cron expressions, matching and time-zone names."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.spec.cron import CronSchedule, parse_cron, validate_timezone

ALL_MINUTES = frozenset(range(60))
ALL_HOURS = frozenset(range(24))
ALL_DOMS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_DOWS = frozenset(range(7))


def error_of(expr: str) -> str:
    with pytest.raises(ValueError) as info:
        parse_cron(expr)
    return str(info.value)


# ----------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("* * * * *", "minutes", ALL_MINUTES),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5 * * * *", "minutes", {5}),
        ("1,2,3 * * * *", "minutes", {1, 2, 3}),
        ("10-13 * * * *", "minutes", {10, 11, 12, 13}),
        ("10-20/5 * * * *", "minutes", {10, 15, 20}),
        ("50/5 * * * *", "minutes", {50, 55}),
        ("0,30/10 * * * *", "minutes", {0, 30, 40, 50}),
        ("* 9-17 * * *", "hours", set(range(9, 18))),
        ("* */6 * * *", "hours", {0, 6, 12, 18}),
        ("* * 1,15 * *", "days_of_month", {1, 15}),
        ("* * */10 * *", "days_of_month", {1, 11, 21, 31}),
        ("* * * JAN *", "months", {1}),
        ("* * * jan-Mar *", "months", {1, 2, 3}),
        ("* * * */3 *", "months", {1, 4, 7, 10}),
        ("* * * DEC,6 *", "months", {6, 12}),
        ("* * * * MON-FRI", "days_of_week", {1, 2, 3, 4, 5}),
        ("* * * * sun", "days_of_week", {0}),
        ("* * * * */2", "days_of_week", {0, 2, 4, 6}),
        ("* * * * 1/3", "days_of_week", {1, 4}),
    ],
)
def test_parse_fields(expr: str, field: str, expected: set[int]) -> None:
    assert getattr(parse_cron(expr), field) == frozenset(expected)


@pytest.mark.parametrize(
    ("expr", "dom_restricted", "dow_restricted"),
    [
        ("0 0 * * *", False, False),
        ("0 0 ? * ?", False, False),
        ("0 0 */1 * */1", False, False),
        ("0 0 1 * *", True, False),
        ("0 0 * * 1", False, True),
        ("0 0 1-31 * 0-6", True, True),
        ("0 0 */2 * *", True, False),
        ("0 0 1,* * *", False, False),
    ],
)
def test_restricted_flags(expr: str, dom_restricted: bool, dow_restricted: bool) -> None:
    schedule = parse_cron(expr)
    assert (schedule.dom_restricted, schedule.dow_restricted) == (dom_restricted, dow_restricted)


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros(macro: str, equivalent: str) -> None:
    schedule = parse_cron(macro)
    assert schedule.expression == macro
    assert dataclasses.replace(schedule, expression=equivalent) == parse_cron(equivalent)


def test_whitespace_is_flexible_and_expression_kept() -> None:
    schedule = parse_cron("  0\t3  *  * *\n")
    assert schedule.expression == "  0\t3  *  * *\n"
    assert schedule.hours == {3}


def test_schedule_is_frozen() -> None:
    schedule = parse_cron("@daily")
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.minutes = frozenset()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month field '32': 32 is out of range 1-31"),
        ("* * * 13 *", "month field '13': 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8': 8 is out of range 0-6"),
        ("* * * * 7", "day-of-week field '7': 7 is out of range 0-6"),
        ("0-60 * * * *", "minute field '0-60': 60 is out of range 0-59"),
        ("5-2 * * * *", "minute field '5-2': range '5-2' starts after it ends"),
        ("* * * * SAT-SUN", "day-of-week field 'SAT-SUN': range 'SAT-SUN' starts after it ends"),
        ("*/0 * * * *", "minute field '*/0': step in '*/0' must be at least 1"),
        ("1,,2 * * * *", "minute field '1,,2': empty list item"),
        ("1-2-3 * * * *", "minute field '1-2-3': too many '-' in '1-2-3'"),
        ("*/2/3 * * * *", "minute field '*/2/3': too many '/' in '*/2/3'"),
        ("*/ * * * *", "minute field '*/': missing a number in '*/'"),
        ("a * * * *", "minute field 'a': 'a' is not a number"),
        ("-1 * * * *", "minute field '-1': missing a number in '-1'"),
        ("* MON * * *", "hour field 'MON': 'MON' is not a number"),
        ("* * * FOO *", "month field 'FOO': 'FOO' is not a number or month name (JAN-DEC)"),
        ("* * * * FRIDAY", "day-of-week field 'FRIDAY': 'FRIDAY' is not a number or weekday name (SUN-SAT)"),
        ("* * * * */MON", "day-of-week field '*/MON': 'MON' is not a number"),
        ("? * * * *", "minute field '?': '?' is only allowed in the day-of-month and day-of-week fields"),
        ("* * * ? *", "month field '?': '?' is only allowed"),
        ("* * * * \u0661", "day-of-week field '\u0661': '\u0661' is not a number or weekday name"),
        ("0 0 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        ("0 0 * * * *", "a seconds field is not supported"),
        ("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
        ("@every 1h", "'@every' intervals are not supported"),
        ("@Daily", "unknown cron macro '@Daily'; expected one of @yearly, @annually"),
        ("@reboot", "unknown cron macro '@reboot'"),
        ("TZ=UTC 0 0 * * *", "timeZone field"),
        ("CRON_TZ=Europe/Berlin 0 0 * * *", "time-zone prefixes are not supported"),
        ("* " * 600, "at most 1000 characters"),
    ],
)
def test_parse_rejects(expr: str, message: str) -> None:
    error = error_of(expr)
    assert message in error
    assert not error[0].isupper()
    assert not error.endswith(".")


def test_exact_messages_for_common_mistakes() -> None:
    assert error_of("61 * * * *") == "minute field '61': 61 is out of range 0-59"
    assert error_of("0 0 0 * * *") == (
        "expected 5 fields (minute hour day-of-month month day-of-week), got 6; "
        "a seconds field is not supported"
    )


def test_non_string_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected a cron expression"):
        parse_cron(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- matching
# 2024-03-15 is a Friday; 2024-03-17 a Sunday; 2024-04-01 a Monday.


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("*/15 * * * *", datetime(2024, 3, 15, 10, 45), True),
        ("*/15 * * * *", datetime(2024, 3, 15, 10, 50), False),
        ("*/15 * * * *", datetime(2024, 3, 15, 10, 45, 59, 999), True),
        ("0 9 * * MON-FRI", datetime(2024, 3, 15, 9, 0), True),
        ("0 9 * * MON-FRI", datetime(2024, 3, 16, 9, 0), False),
        ("0 9 * * MON-FRI", datetime(2024, 3, 15, 9, 1), False),
        ("0 9 * * MON-FRI", datetime(2024, 3, 15, 10, 0), False),
        # 0 and SUN mean Sunday (Kubernetes, like robfig/cron, has no 7).
        ("0 0 * * 0", datetime(2024, 3, 17, 0, 0), True),
        ("0 0 * * Sun", datetime(2024, 3, 17, 0, 0), True),
        # Both day fields restricted: either one matching is enough (OR).
        ("0 0 1,15 * FRI", datetime(2024, 3, 15, 0, 0), True),  # both
        ("0 0 1,15 * FRI", datetime(2024, 3, 22, 0, 0), True),  # Friday only
        ("0 0 1,15 * FRI", datetime(2024, 4, 1, 0, 0), True),  # 1st only
        ("0 0 1,15 * FRI", datetime(2024, 3, 16, 0, 0), False),  # neither
        # A stepped '*' is a restriction too, so OR applies ...
        ("0 0 1 * */2", datetime(2024, 3, 19, 0, 0), True),  # Tuesday
        # ... but '*', '?' and '*/1' are not, so the other field alone decides (AND).
        ("0 0 1 * *", datetime(2024, 3, 19, 0, 0), False),
        ("0 0 1 * ?", datetime(2024, 3, 19, 0, 0), False),
        ("0 0 1 * */1", datetime(2024, 3, 19, 0, 0), False),
        ("0 0 1 * *", datetime(2024, 4, 1, 0, 0), True),
        ("0 0 ? * MON", datetime(2024, 4, 1, 0, 0), True),
        ("0 0 ? * MON", datetime(2024, 4, 2, 0, 0), False),
        # Names and months.
        ("30 6 * JUL-AUG *", datetime(2024, 7, 4, 6, 30), True),
        ("30 6 * JUL-AUG *", datetime(2024, 9, 4, 6, 30), False),
        ("0 12 29 feb *", datetime(2024, 2, 29, 12, 0), True),
        ("@yearly", datetime(2025, 1, 1, 0, 0), True),
        ("@yearly", datetime(2025, 1, 2, 0, 0), False),
        ("@weekly", datetime(2024, 3, 17, 0, 0), True),
        ("@weekly", datetime(2024, 3, 18, 0, 0), False),
        ("@hourly", datetime(2024, 3, 18, 13, 0), True),
        ("@hourly", datetime(2024, 3, 18, 13, 1), False),
        # Wall-clock fields of aware datetimes are used as they are.
        ("0 9 * * *", datetime(2024, 3, 15, 9, 0, tzinfo=timezone(timedelta(hours=9))), True),
    ],
)
def test_matches(expr: str, when: datetime, expected: bool) -> None:
    assert parse_cron(expr).matches(when) is expected


# -------------------------------------------------------------------- next_after


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", datetime(2024, 3, 15, 10, 7), datetime(2024, 3, 15, 10, 15)),
        ("*/15 * * * *", datetime(2024, 3, 15, 10, 15), datetime(2024, 3, 15, 10, 30)),
        ("*/15 * * * *", datetime(2024, 3, 15, 23, 50), datetime(2024, 3, 16, 0, 0)),
        ("0 9 * * MON-FRI", datetime(2024, 3, 15, 9, 0), datetime(2024, 3, 18, 9, 0)),
        ("0 0 1,15 * FRI", datetime(2024, 3, 15, 10, 7), datetime(2024, 3, 22, 0, 0)),
        ("@yearly", datetime(2024, 6, 1), datetime(2025, 1, 1)),
        ("@monthly", datetime(2024, 12, 31, 23, 59, 59), datetime(2025, 1, 1)),
        ("0 0 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29)),
        ("0 0 29 2 *", datetime(2096, 3, 1), datetime(2104, 2, 29)),
        ("0 0 31 * *", datetime(2024, 4, 1), datetime(2024, 5, 31)),
        ("5 4 * * 0", datetime(2024, 3, 17, 4, 4, 30), datetime(2024, 3, 17, 4, 5)),
    ],
)
def test_next_after(expr: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(expr).next_after(after) == expected


def test_next_after_keeps_tzinfo() -> None:
    tz = timezone(timedelta(hours=2))
    assert parse_cron("0 3 * * *").next_after(datetime(2024, 1, 1, 5, tzinfo=tz)) == datetime(
        2024, 1, 2, 3, tzinfo=tz
    )


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_next_after_never(expr: str) -> None:
    assert parse_cron(expr).next_after(datetime(2024, 1, 1)) is None


def test_next_after_near_the_end_of_time() -> None:
    assert parse_cron("0 0 1 1 *").next_after(datetime(9999, 6, 1)) is None


SAMPLE_EXPRESSIONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 */5 * * *",
    "30 2 * * 1-5",
    "0 0 1,15 * 3",
    "15 10 13 * FRI",
    "0 0 * * 0",
    "0 12 1 */2 *",
    "@hourly",
    "@daily",
]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(SAMPLE_EXPRESSIONS),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
)
def test_next_after_is_the_first_match(expr: str, after: datetime) -> None:
    schedule = parse_cron(expr)
    found = schedule.next_after(after)
    assert found is not None
    assert found > after
    assert found.second == found.microsecond == 0
    assert schedule.matches(found)
    if found - after <= timedelta(days=2):
        minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute < found:
            assert not schedule.matches(minute)
            minute += timedelta(minutes=1)


# ----------------------------------------------------------------- properties

_ITEM = st.one_of(
    st.just("*"),
    st.integers(0, 70).map(str),
    st.tuples(st.integers(0, 70), st.integers(0, 70)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.sampled_from(["*", "?", "3", "1-20", "MON", "jan"]), st.integers(0, 12)).map(
        lambda t: f"{t[0]}/{t[1]}"
    ),
    st.sampled_from(["JAN", "sun", "Sat", "DEC-FEB", "mon-fri", "?", "", "x", "1-", "-"]),
)
_FIELD = st.lists(_ITEM, min_size=1, max_size=3).map(",".join)


@given(st.lists(_FIELD, min_size=5, max_size=5).map(" ".join))
def test_cron_like_text_gives_schedule_or_value_error(expr: str) -> None:
    try:
        schedule = parse_cron(expr)
    except ValueError as error:
        assert str(error)
        assert not str(error)[0].isupper()
        return
    assert schedule.minutes <= ALL_MINUTES
    assert schedule.hours <= ALL_HOURS
    assert schedule.days_of_month <= ALL_DOMS
    assert schedule.months <= ALL_MONTHS
    assert schedule.days_of_week <= ALL_DOWS


@given(st.text())
def test_any_text_gives_schedule_or_value_error(expr: str) -> None:
    try:
        schedule = parse_cron(expr)
    except ValueError:
        return
    assert isinstance(schedule, CronSchedule)


@given(st.integers(0, 6))
def test_weekday_names_equal_numbers(day: int) -> None:
    name = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"][day]
    assert parse_cron(f"0 0 * * {name}").days_of_week == parse_cron(f"0 0 * * {day}").days_of_week
    assert parse_cron(f"0 0 * * {name.lower()}").days_of_week == frozenset({day})


def test_seven_is_refused_as_kubernetes_refuses_it() -> None:
    assert parse_cron("* * * * SUN").days_of_week == parse_cron("* * * * 0").days_of_week == {0}
    for expression in ("* * * * 7", "* * * * 1-7", "* * * * 0,7"):
        with pytest.raises(ValueError, match="out of range 0-6"):
            parse_cron(expression)


# -------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    "name",
    ["UTC", "Asia/Seoul", "Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires", "Etc/GMT+5"],
)
def test_validate_timezone_accepts(name: str) -> None:
    assert validate_timezone(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Asia/Seol", "unknown time zone 'Asia/Seol'; did you mean 'Asia/Seoul'?"),
        ("asia/seoul", "unknown time zone 'asia/seoul'; did you mean 'Asia/Seoul'?"),
        ("utc", "did you mean 'UTC'?"),
        ("Europe/Berln", "did you mean 'Europe/Berlin'?"),
        ("America/New York", "did you mean 'America/New_York'?"),
        ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        ("", "expected an IANA time zone name like 'Europe/Berlin', got ''"),
        ("Local", "the zone must be explicit"),
        ("/etc/localtime", "not a file path"),
        ("/usr/share/zoneinfo/UTC", "not a file path"),
        ("../../etc/passwd", "not a file path"),
        ("Europe/./Berlin", "not a file path"),
        ("Europe", "unknown time zone 'Europe'"),
        ("Europe/Berlin\x00", "unknown time zone"),
    ],
)
def test_validate_timezone_rejects(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_timezone(name)
    assert message in str(info.value)


@given(st.text(max_size=40))
def test_any_text_gives_zone_or_value_error(name: str) -> None:
    try:
        assert validate_timezone(name) == name
    except ValueError as error:
        assert not str(error)[0].isupper()
