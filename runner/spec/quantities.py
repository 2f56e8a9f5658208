"""Kubernetes-style CPU and memory quantities, and compact durations.

Every parser takes the loosely typed value found in a manifest and returns a
plain ``int`` in base units (millicores, bytes, seconds), or raises
``ValueError`` with a short message meant for users. Every ``format_*``
function returns the canonical string for a value, so that
``parse_x(format_x(n)) == n`` for every valid ``n``.

Arithmetic is exact (``fractions.Fraction``): ``"1.5Gi"`` is exactly
1610612736 bytes and ``0.1`` CPU is exactly 100 millicores.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = [
    "MAX_CPU_MILLICORES",
    "MAX_DURATION_SECONDS",
    "MAX_MEMORY_BYTES",
    "format_cpu",
    "format_duration",
    "format_memory",
    "parse_cpu",
    "parse_duration",
    "parse_memory",
]

MAX_CPU_MILLICORES = 1024 * 1000
"""The largest CPU request accepted: 1024 cores."""

MAX_MEMORY_BYTES = 1024 * 2**40
"""The largest memory request accepted: 1024Ti (1Pi)."""

MAX_DURATION_SECONDS = 30 * 86400
"""The longest duration accepted: 30 days."""

_MAX_TEXT = 100  # longer strings are never valid quantities
_MAX_SHOWN = 60  # longest rendering of a rejected value in a message

# A non-negative decimal number the way Kubernetes writes one: "2", "0.5", ".5", "2."
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"


def _shown(value: object) -> str:
    """Quote a rejected value for a message, shortening very long ones."""
    if isinstance(value, str) and len(value) > _MAX_SHOWN:
        return repr(value[: _MAX_SHOWN - 3] + "...")
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else f"a {len(text)}-character {type(value).__name__}"


def _check_length(text: str, example: str) -> None:
    """Reject absurdly long strings before doing arithmetic on them."""
    if len(text) > _MAX_TEXT:
        raise ValueError(f"{example}, got a {len(text)}-character string")


def _with_hint(message: str, suggestion: str | None) -> str:
    """Append "did you mean ...?" to ``message`` when there is a suggestion."""
    return f"{message}; did you mean {suggestion!r}?" if suggestion else message


def _float_to_fraction(value: float) -> Fraction | None:
    """Convert a float by its shortest decimal repr (0.1 -> 1/10), or None if not finite."""
    if not math.isfinite(value):
        return None
    return Fraction(repr(value))


# --------------------------------------------------------------------------- CPU

_CPU_EXAMPLE = "expected a CPU quantity like 2, 0.5 or 500m"
_CPU_RE = re.compile(rf"(-?)({_NUMBER})(m?)", re.ASCII)
_CPU_LENIENT_RE = re.compile(rf"\s*({_NUMBER})\s*(m|cores?|cpus?|vcpus?)?\s*", re.ASCII | re.IGNORECASE)


def parse_cpu(value: str | int | float) -> int:
    """Parse a CPU quantity (``2``, ``0.5``, ``"4"``, ``"500m"``, ``"1.5"``) into millicores.

    The result is between 1m and 1024 cores. Booleans, NaN, infinities and
    values finer than 1m (``0.0001``) are rejected.
    """
    cores = _cpu_cores(value)
    millicores = cores * 1000
    if cores < 0:
        raise ValueError(f"expected a positive CPU quantity, got {_shown(value)}")
    if cores == 0:
        raise ValueError(f"expected a CPU quantity greater than 0, got {_shown(value)}")
    if millicores.denominator != 1:
        raise ValueError(f"expected a CPU quantity in whole millicores (1m = 0.001), got {_shown(value)}")
    if millicores > MAX_CPU_MILLICORES:
        raise ValueError(f"expected at most {MAX_CPU_MILLICORES // 1000} CPU cores, got {_shown(value)}")
    return int(millicores)


def _cpu_cores(value: object) -> Fraction:
    """Turn a manifest value into an exact (possibly negative) number of cores."""
    if isinstance(value, bool):
        raise ValueError(f"{_CPU_EXAMPLE}, got {_shown(value)}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        cores = _float_to_fraction(value)
        if cores is None:
            raise ValueError(f"{_CPU_EXAMPLE}, got {_shown(value)}")
        return cores
    if isinstance(value, str):
        _check_length(value, _CPU_EXAMPLE)
        match = _CPU_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(_with_hint(f"{_CPU_EXAMPLE}, got {_shown(value)}", _cpu_hint(value)))
        sign, number, milli = match.groups()
        cores = Fraction(number) / (1000 if milli else 1)
        return -cores if sign else cores
    raise ValueError(f"{_CPU_EXAMPLE}, got {_shown(value)}")


def _cpu_hint(text: str) -> str | None:
    """Suggest a valid spelling for near misses like ``"500M"`` or ``"2 cores"``."""
    match = _CPU_LENIENT_RE.fullmatch(text)
    if match is None:
        return None
    number, unit = match.groups()
    candidate = f"{number}m" if unit and unit.lower() == "m" else number
    try:
        parse_cpu(candidate)
    except ValueError:
        return None
    return candidate


def format_cpu(millicores: int) -> str:
    """Format millicores the way Kubernetes does: ``"4"`` for whole cores, else ``"500m"``.

    Zero formats as ``"0"``; negative values raise ``ValueError``.
    """
    _check_formattable(millicores, "millicores")
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def _check_formattable(n: object, unit: str) -> None:
    """Reject values no ``format_*`` function can represent (non-ints, negatives)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"expected a whole number of {unit}, got {n!r}")
    if n < 0:
        raise ValueError(f"expected a non-negative number of {unit}, got {n!r}")


# ------------------------------------------------------------------------ memory

_MEMORY_EXAMPLE = "expected a memory quantity like 512Mi, 16Gi or 1073741824"
_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_MEMORY_SUFFIXES = {**_BINARY_SUFFIXES, **_DECIMAL_SUFFIXES}
_MEMORY_RE = re.compile(rf"(-?)({_NUMBER})(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", re.ASCII)
# Near misses: any case, optional "i", optional trailing "b"/"B", spaces ("16 GB", "16gi", "500m").
_MEMORY_LENIENT_RE = re.compile(rf"\s*({_NUMBER})\s*([kmgtpe])(i?)b?\s*", re.ASCII | re.IGNORECASE)


def parse_memory(value: str | int) -> int:
    """Parse a memory quantity (``1073741824``, ``"512Mi"``, ``"1.5Gi"``, ``"2G"``) into bytes.

    Suffixes are exactly Kubernetes': binary ``Ki Mi Gi Ti Pi Ei`` and decimal
    ``k M G T P E``. The result must be a whole number of bytes between 1 and
    1024Ti. Near misses (``"16GB"``, ``"16gi"``) get a "did you mean" hint.
    """
    amount = _memory_bytes(value)
    if amount < 0:
        raise ValueError(f"expected a positive memory quantity, got {_shown(value)}")
    if amount == 0:
        raise ValueError(f"expected a memory quantity greater than 0, got {_shown(value)}")
    if amount.denominator != 1:
        raise ValueError(f"expected a memory quantity in whole bytes, got {_shown(value)}")
    if amount > MAX_MEMORY_BYTES:
        raise ValueError(
            f"expected a memory quantity of at most {format_memory(MAX_MEMORY_BYTES)}, got {_shown(value)}"
        )
    return int(amount)


def _memory_bytes(value: object) -> Fraction:
    """Turn a manifest value into an exact (possibly negative or fractional) byte count."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Fraction(value)
    if isinstance(value, str):
        _check_length(value, _MEMORY_EXAMPLE)
        match = _MEMORY_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(_with_hint(f"{_MEMORY_EXAMPLE}, got {_shown(value)}", _memory_hint(value)))
        sign, number, suffix = match.groups()
        amount = Fraction(number) * _MEMORY_SUFFIXES.get(suffix or "", 1)
        return -amount if sign else amount
    raise ValueError(f"{_MEMORY_EXAMPLE}, got {_shown(value)}")


def _memory_hint(text: str) -> str | None:
    """Suggest the binary-suffix spelling users usually mean (``"16GB"`` -> ``"16Gi"``)."""
    match = _MEMORY_LENIENT_RE.fullmatch(text)
    if match is None:
        return None
    number, letter = match.group(1), match.group(2)
    candidate = f"{number}{letter.upper()}i"
    try:
        parse_memory(candidate)
    except ValueError:
        return None
    return candidate


def format_memory(n: int) -> str:
    """Format bytes with the largest binary suffix that divides exactly (``"16Gi"``), else plain bytes.

    Zero formats as ``"0"``; negative values raise ``ValueError``.
    """
    _check_formattable(n, "bytes")
    if n == 0:
        return "0"
    for suffix, factor in reversed(_BINARY_SUFFIXES.items()):
        if n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)


# --------------------------------------------------------------------- durations

_DURATION_EXAMPLE = "expected a duration like 30s, 90m, 2h, 1d or 1h30m"
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_LIST = "d, h, m or s"
_SUBSECOND_MESSAGE = "expected a duration in whole seconds (fractions of a second are not supported), got {}"
_SUBSECOND_UNITS = frozenset({"ms", "us", "µs", "μs", "ns"})
_UNIT_SYNONYMS = {
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
}
_BARE_SECONDS_RE = re.compile(rf"-?{_NUMBER}", re.ASCII)
_DURATION_TOKEN_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([^\W\d_]*)")


def parse_duration(value: str | int | float) -> int:
    """Parse a duration (``30``, ``"30s"``, ``"90m"``, ``"2h"``, ``"1d"``, ``"1h30m15s"``) into seconds.

    Numbers and bare digit strings are seconds. Units are ``d h m s``, each at
    most once and largest first. The result is a whole number of seconds
    between 1 and 30 days.
    """
    seconds = _duration_seconds(value)
    if seconds < 0:
        raise ValueError(f"expected a positive duration, got {_shown(value)}")
    if seconds == 0:
        raise ValueError(f"expected a duration greater than 0, got {_shown(value)}")
    if seconds.denominator != 1:
        raise ValueError(_SUBSECOND_MESSAGE.format(_shown(value)))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"expected a duration of at most {format_duration(MAX_DURATION_SECONDS)}, got {_shown(value)}"
        )
    return int(seconds)


def _duration_seconds(value: object) -> Fraction:
    """Turn a manifest value into an exact (possibly negative or fractional) number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_EXAMPLE}, got {_shown(value)}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        seconds = _float_to_fraction(value)
        if seconds is None:
            raise ValueError(f"{_DURATION_EXAMPLE}, got {_shown(value)}")
        return seconds
    if isinstance(value, str):
        _check_length(value, _DURATION_EXAMPLE)
        text = value.strip()
        if _BARE_SECONDS_RE.fullmatch(text):
            return Fraction(text)
        if text.startswith("-"):
            return -_strict_duration(text[1:], value)
        return _strict_duration(text, value)
    raise ValueError(f"{_DURATION_EXAMPLE}, got {_shown(value)}")


def _duration_tokens(text: str) -> list[tuple[str, str]] | None:
    """Split ``"1h30m"`` into ``[("1", "h"), ("30", "m")]``, or None if it isn't number/unit pairs."""
    tokens = [(m.group(1), m.group(2)) for m in _DURATION_TOKEN_RE.finditer(text)]
    if not tokens or "".join(number + unit for number, unit in tokens) != text:
        return None
    return tokens


def _strict_duration(text: str, original: str) -> Fraction:
    """Parse a compound duration string, explaining exactly what is wrong when it is invalid."""
    hint = _duration_hint(text)
    tokens = _duration_tokens(text)
    if tokens is None:
        raise ValueError(_with_hint(f"{_DURATION_EXAMPLE}, got {_shown(original)}", hint))
    total = Fraction(0)
    previous_size = math.inf
    for number, unit in tokens:
        problem = _duration_token_problem(number, unit, original)
        if problem is not None:
            raise ValueError(_with_hint(problem, hint))
        size = _DURATION_UNITS[unit]
        if size >= previous_size:
            raise ValueError(
                _with_hint(
                    f"expected each unit at most once, largest first (like 1d2h30m), got {_shown(original)}",
                    hint,
                )
            )
        previous_size = size
        total += int(number) * size
    return total


def _duration_token_problem(number: str, unit: str, original: str) -> str | None:
    """Say what is wrong with one number/unit pair of a duration, or None if it is fine."""
    if unit.lower() in _SUBSECOND_UNITS:
        return _SUBSECOND_MESSAGE.format(_shown(original))
    if not unit:
        return f"expected a unit ({_UNIT_LIST}) after {number!r} in {_shown(original)}"
    if unit not in _DURATION_UNITS:
        return f"unknown duration unit {unit!r} in {_shown(original)}; use {_UNIT_LIST}, like 2h or 1h30m"
    if not number.isdigit():
        return f"expected whole numbers in a duration, like 1h30m, got {_shown(original)}"
    return None


def _lenient_duration(text: str) -> Fraction | None:
    """Read a sloppy duration (``"2 Hours"``, ``"1.5h"``, ``"30m1h"``) as seconds, or None."""
    tokens = _duration_tokens(re.sub(r"\s+", "", text).lower())
    if tokens is None:
        return None
    total = Fraction(0)
    for number, unit in tokens:
        canonical = _UNIT_SYNONYMS.get(unit)
        if canonical is None:
            return None
        total += Fraction(number) * _DURATION_UNITS[canonical]
    return total


def _duration_hint(text: str) -> str | None:
    """Suggest the canonical spelling of a sloppy duration, if it means a valid one."""
    seconds = _lenient_duration(text)
    if seconds is None or seconds.denominator != 1 or not 0 < seconds <= MAX_DURATION_SECONDS:
        return None
    candidate = format_duration(int(seconds))
    return None if candidate == text else candidate


def format_duration(seconds: int) -> str:
    """Format seconds compactly and canonically: 7200 -> ``"2h"``, 90061 -> ``"1d1h1m1s"``.

    Zero formats as ``"0s"``; negative values raise ``ValueError``.
    """
    _check_formattable(seconds, "seconds")
    if seconds == 0:
        return "0s"
    parts = []
    remaining = seconds
    for unit, size in _DURATION_UNITS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
