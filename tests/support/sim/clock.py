"""The simulator's clock and its timers.

Every controller of the simulated cluster asks one clock what time it is and schedules its future work
(pod backoff, deadlines, TTLs, cron slots, simulated container durations) as timers on it. Two clocks:

- `FakeClock`: time stands still until the test advances it (`Simulator.advance`), which fires the due
  timers in order (time, then scheduling order), so a run is deterministic and a test never sleeps;
- `RealClock`: wall-clock time, for end-to-end runs with real containers; timers fire when due.

Timers only hold callbacks: the simulator's worker thread runs them (see cluster.py), never the clock.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)
"""Where fake time starts: a Monday, midnight UTC (round numbers make cron tests readable)."""


@dataclass(order=True)
class Timer:
    at: datetime
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class _Timers:
    """A heap of timers; cancelled ones are dropped lazily when they reach the top."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        raise NotImplementedError

    def call_at(self, at: datetime, callback: Callable[[], None]) -> Timer:
        timer = Timer(at, next(self._seq), callback)
        with self._lock:
            heapq.heappush(self._heap, timer)
        return timer

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now() + timedelta(seconds=seconds), callback)

    def next_due(self) -> datetime | None:
        """When the earliest live timer is due, or None."""
        with self._lock:
            while self._heap and self._heap[0].cancelled:
                heapq.heappop(self._heap)
            return self._heap[0].at if self._heap else None

    def pop_due(self) -> Timer | None:
        """The earliest live timer that is due now, removed from the heap; None when none is due."""
        now = self.now()
        with self._lock:
            while self._heap and (self._heap[0].cancelled or self._heap[0].at <= now):
                timer = heapq.heappop(self._heap)
                if not timer.cancelled:
                    return timer
            return None


class FakeClock(_Timers):
    """Time that moves only when told to; `set` never goes backwards."""

    fake = True

    def __init__(self, start: datetime = EPOCH) -> None:
        super().__init__()
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = max(self._now, moment)


class RealClock(_Timers):
    """Wall-clock time (UTC); timers fire when due."""

    fake = False

    def now(self) -> datetime:
        return datetime.now(UTC)


Clock = FakeClock | RealClock
