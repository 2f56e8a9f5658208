"""Pure decisions for local runs: retry backoff and what an attempt's end means for the run."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from runner.records import RunState

MAX_BACKOFF_SECONDS = 300.0


class Ending(StrEnum):
    EXITED = "exited"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Decision:
    state: RunState | None  # the run's final state, or None to retry
    retry_in: float = 0.0


def backoff(retry: int, base: float) -> float:
    """Seconds before retry number `retry` (1-based): base, 2*base, 4*base ... capped at 5 minutes."""
    return min(base * (1 << (retry - 1)), MAX_BACKOFF_SECONDS)


def after_attempt(ending: Ending, exit_code: int, attempt: int, max_attempts: int, base: float) -> Decision:
    """Timeouts and cancellation end the run; a failure is retried while attempts remain."""
    if ending is Ending.CANCELLED:
        return Decision(RunState.CANCELLED)
    if ending is Ending.TIMED_OUT:
        return Decision(RunState.TIMED_OUT)
    if exit_code == 0:
        return Decision(RunState.SUCCEEDED)
    if attempt >= max_attempts:
        return Decision(RunState.FAILED)
    return Decision(None, retry_in=backoff(attempt, base))
