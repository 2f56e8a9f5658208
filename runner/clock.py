"""The one clock: every wait, deadline and timestamp in runner reads time through a Clock.

Tests pass a fake one (tests/support/clock.py) and so drive timeouts, backoff, schedules and cron
decisions without sleeping. It sits at the bottom of the layers, beside config and errors.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and waits."""
        ...

    def time(self) -> float:
        """Seconds since the epoch, for what is recorded."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def utc_now(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime (cron decisions work in datetimes)."""
    return datetime.fromtimestamp(clock.time(), UTC)
