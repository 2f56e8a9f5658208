"""Tests for runner.spec.quantities: CPU, memory and duration parsing and formatting."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.spec.quantities import (
    MAX_CPU_MILLICORES,
    MAX_DURATION_SECONDS,
    MAX_MEMORY_BYTES,
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)

Ki, Mi, Gi, Ti, Pi = 2**10, 2**20, 2**30, 2**40, 2**50


def error_of(parse: object, value: object) -> str:
    """The message of the ValueError that ``parse(value)`` raises."""
    with pytest.raises(ValueError) as info:
        parse(value)  # type: ignore[operator]
    return str(info.value)


def assert_user_message(message: str) -> None:
    """Messages shown to users start in lower case and have no trailing period."""
    assert message
    assert not message[0].isupper(), message
    assert not message.endswith("."), message


# ----------------------------------------------------------------------------- CPU


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        (2, 2000),
        (0.5, 500),
        ("4", 4000),
        ("500m", 500),
        ("1.5", 1500),
        ("0.001", 1),
        ("1m", 1),
        (0.1, 100),
        (0.001, 1),
        (1024, MAX_CPU_MILLICORES),
        ("1024000m", MAX_CPU_MILLICORES),
        (" 2 ", 2000),
        (".5", 500),
        ("250.0m", 250),
        (3.0, 3000),
    ],
)
def test_parse_cpu_accepts(value: str | float, millicores: int) -> None:
    assert parse_cpu(value) == millicores


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2 cores", "expected a CPU quantity like 2, 0.5 or 500m, got '2 cores'; did you mean '2'?"),
        ("500M", "did you mean '500m'?"),
        ("", "expected a CPU quantity like 2, 0.5 or 500m, got ''"),
        ("abc", "got 'abc'"),
        ("1e3", "got '1e3'"),
        ("2k", "got '2k'"),
        (0, "expected a CPU quantity greater than 0, got 0"),
        ("0m", "greater than 0"),
        (-1, "expected a positive CPU quantity, got -1"),
        ("-500m", "expected a positive CPU quantity"),
        (True, "got True"),
        (False, "got False"),
        (math.nan, "got nan"),
        (math.inf, "got inf"),
        (0.0001, "in whole millicores"),
        ("0.0001", "in whole millicores"),
        ("0.5m", "in whole millicores"),
        (1025, "expected at most 1024 CPU cores, got 1025"),
        ("1024001m", "at most 1024 CPU cores"),
        (1e300, "at most 1024 CPU cores"),
        (None, "got None"),
        ("9" * 500, "got a 500-character string"),
        ("\u0663", "got '\u0663'"),
    ],
)
def test_parse_cpu_rejects(value: object, fragment: str) -> None:
    message = error_of(parse_cpu, value)
    assert fragment in message
    assert_user_message(message)


@pytest.mark.parametrize(
    ("millicores", "text"),
    [(4000, "4"), (500, "500m"), (1500, "1500m"), (1, "1m"), (1000, "1"), (0, "0")],
)
def test_format_cpu(millicores: int, text: str) -> None:
    assert format_cpu(millicores) == text


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_format_cpu_rejects_non_counts(bad: object) -> None:
    with pytest.raises(ValueError):
        format_cpu(bad)  # type: ignore[arg-type]


@given(st.integers(1, MAX_CPU_MILLICORES))
def test_cpu_round_trip(millicores: int) -> None:
    assert parse_cpu(format_cpu(millicores)) == millicores


@given(st.from_regex(r"\A[0-9]{1,5}(\.[0-9]{0,4})?m?\Z"))
def test_cpu_format_is_canonical(text: str) -> None:
    try:
        millicores = parse_cpu(text)
    except ValueError as error:
        assert_user_message(str(error))
        return
    canonical = format_cpu(millicores)
    assert parse_cpu(canonical) == millicores
    assert format_cpu(parse_cpu(canonical)) == canonical


@given(st.one_of(st.text(), st.floats(), st.integers(), st.booleans(), st.none()))
def test_cpu_any_input_gives_value_or_value_error(value: object) -> None:
    try:
        millicores = parse_cpu(value)  # type: ignore[arg-type]
    except ValueError as error:
        assert_user_message(str(error))
    else:
        assert 1 <= millicores <= MAX_CPU_MILLICORES


# -------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1, 1),
        (1073741824, Gi),
        ("1073741824", Gi),
        ("16Gi", 16 * Gi),
        ("512Mi", 512 * Mi),
        ("1Ki", Ki),
        ("1Ti", Ti),
        ("1Pi", Pi),
        ("1024Ti", MAX_MEMORY_BYTES),
        ("1.5Gi", 3 * Gi // 2),
        ("0.5Ki", 512),
        ("1k", 1000),
        ("2M", 2_000_000),
        ("2G", 2 * 10**9),
        ("1T", 10**12),
        ("1P", 10**15),
        ("1.5k", 1500),
        (" 16Gi ", 16 * Gi),
    ],
)
def test_parse_memory_accepts(value: str | int, size: int) -> None:
    assert parse_memory(value) == size


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("16GB", "got '16GB'; did you mean '16Gi'?"),
        ("16gi", "did you mean '16Gi'?"),
        ("16GiB", "did you mean '16Gi'?"),
        ("16 Gi", "did you mean '16Gi'?"),
        ("500m", "did you mean '500Mi'?"),
        ("1K", "did you mean '1Ki'?"),
        ("abc", "expected a memory quantity like 512Mi, 16Gi or 1073741824, got 'abc'"),
        ("", "got ''"),
        ("2PB", "got '2PB'"),
        ("1.5", "expected a memory quantity in whole bytes, got '1.5'"),
        ("1.0001k", "in whole bytes"),
        (0, "expected a memory quantity greater than 0, got 0"),
        ("0Gi", "greater than 0"),
        (-1, "expected a positive memory quantity, got -1"),
        ("-1Gi", "positive"),
        (True, "got True"),
        (1.5, "got 1.5"),
        (None, "got None"),
        ("1Ei", "expected a memory quantity of at most 1Pi, got '1Ei'"),
        ("2P", "at most 1Pi"),
        (MAX_MEMORY_BYTES + 1, "at most 1Pi"),
    ],
)
def test_parse_memory_rejects(value: object, fragment: str) -> None:
    message = error_of(parse_memory, value)
    assert fragment in message
    assert_user_message(message)


def test_parse_memory_gives_no_hint_that_would_fail() -> None:
    assert "did you mean" not in error_of(parse_memory, "2PB")
    assert "did you mean" not in error_of(parse_memory, "16xB")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (16 * Gi, "16Gi"),
        (512 * Mi, "512Mi"),
        (1536 * Mi, "1536Mi"),
        (Ki, "1Ki"),
        (1000, "1000"),
        (1, "1"),
        (Pi, "1Pi"),
        (2**60, "1Ei"),
        (0, "0"),
    ],
)
def test_format_memory(size: int, text: str) -> None:
    assert format_memory(size) == text


@given(st.integers(1, MAX_MEMORY_BYTES))
def test_memory_round_trip(size: int) -> None:
    assert parse_memory(format_memory(size)) == size


@given(st.integers(1, 2**20), st.sampled_from(["", "Ki", "Mi", "Gi", "k", "M", "G"]))
def test_memory_round_trip_through_suffixes(number: int, suffix: str) -> None:
    size = parse_memory(f"{number}{suffix}")
    canonical = format_memory(size)
    assert parse_memory(canonical) == size
    assert format_memory(parse_memory(canonical)) == canonical


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
def test_memory_any_input_gives_value_or_value_error(value: object) -> None:
    try:
        size = parse_memory(value)  # type: ignore[arg-type]
    except ValueError as error:
        assert_user_message(str(error))
    else:
        assert 1 <= size <= MAX_MEMORY_BYTES


@given(st.from_regex(r"\A ?[0-9]{1,4}(\.[0-9]{1,3})? ?[kKmMgGtTpPeE]?[iI]?[bB]? ?\Z"))
def test_memory_hint_always_parses(text: str) -> None:
    try:
        parse_memory(text)
    except ValueError as error:
        hint = re.search(r"did you mean '([^']*)'\?$", str(error))
        if hint:
            parse_memory(hint.group(1))


# ------------------------------------------------------------------------ duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30),
        ("30", 30),
        (30.0, 30),
        ("30s", 30),
        ("90m", 5400),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h30m15s", 5415),
        ("1d1h1m1s", 90061),
        ("1h0m", 3600),
        ("30d", MAX_DURATION_SECONDS),
        ("720h", MAX_DURATION_SECONDS),
        (" 5m ", 300),
        ("90s", 90),
    ],
)
def test_parse_duration_accepts(value: str | float, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "expected a duration like 30s, 90m, 2h, 1d or 1h30m, got ''"),
        ("0s", "expected a duration greater than 0, got '0s'"),
        (0, "greater than 0"),
        (-5, "expected a positive duration, got -5"),
        ("-1h", "expected a positive duration, got '-1h'"),
        (True, "got True"),
        (math.nan, "got nan"),
        (math.inf, "got inf"),
        ("2hours", "unknown duration unit 'hours' in '2hours'; use d, h, m or s"),
        ("2hours", "did you mean '2h'?"),
        ("1H", "did you mean '1h'?"),
        ("3w", "unknown duration unit 'w'"),
        ("500ms", "fractions of a second are not supported"),
        (1.5, "fractions of a second are not supported"),
        ("1.5", "fractions of a second are not supported"),
        ("1.5h", "expected whole numbers in a duration"),
        ("1.5h", "did you mean '1h30m'?"),
        ("30m1h", "largest first"),
        ("30m1h", "did you mean '1h30m'?"),
        ("1h1h", "at most once"),
        ("1h30", "expected a unit (d, h, m or s) after '30' in '1h30'"),
        ("1h 30m", "did you mean '1h30m'?"),
        ("h", "got 'h'"),
        ("31d", "expected a duration of at most 30d, got '31d'"),
        (MAX_DURATION_SECONDS + 1, "at most 30d"),
        (None, "got None"),
        ("1" * 200, "200-character string"),
    ],
)
def test_parse_duration_rejects(value: object, fragment: str) -> None:
    message = error_of(parse_duration, value)
    assert fragment in message
    assert_user_message(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (7200, "2h"),
        (5400, "1h30m"),
        (90061, "1d1h1m1s"),
        (30, "30s"),
        (60, "1m"),
        (86400, "1d"),
        (86401, "1d1s"),
        (0, "0s"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative() -> None:
    assert error_of(format_duration, -1) == "expected a non-negative number of seconds, got -1"


@given(st.integers(1, MAX_DURATION_SECONDS))
def test_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(
    st.integers(0, 29),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_duration_compound_is_canonicalised(d: int, h: int, m: int, s: int, keep: list[bool]) -> None:
    parts = [f"{n}{unit}" for n, unit, k in zip((d, h, m, s), "dhms", keep, strict=True) if k]
    text = "".join(parts)
    expected = sum(n * size for n, size, k in zip((d, h, m, s), (86400, 3600, 60, 1), keep, strict=True) if k)
    if expected == 0:
        with pytest.raises(ValueError):
            parse_duration(text)
        return
    assert parse_duration(text) == expected
    canonical = format_duration(expected)
    assert format_duration(parse_duration(canonical)) == canonical


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()))
def test_duration_any_input_gives_value_or_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as error:
        assert_user_message(str(error))
    else:
        assert 1 <= seconds <= MAX_DURATION_SECONDS


@given(st.from_regex(r"\A-?[0-9]{1,3}(\.[0-9])? ?[a-zA-Zµ]{0,7}([0-9]{1,2}[a-z]{0,3})?\Z"))
def test_duration_hint_always_parses(text: str) -> None:
    try:
        parse_duration(text)
    except ValueError as error:
        hint = re.search(r"did you mean '([^']*)'\?$", str(error))
        if hint:
            assert format_duration(parse_duration(hint.group(1))) == hint.group(1)
