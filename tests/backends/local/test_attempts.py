"""The supervision loop of local runs on a fake clock: timeouts, grace, retries, backoff, cancellation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from runner.backends.local.attempts import AttemptLoop, Outcome
from runner.backends.local.policy import MAX_BACKOFF_SECONDS, Ending, after_attempt, backoff
from runner.records import RunState
from tests.support.fakes import FakeClock


@dataclass
class FakeAttempt:
    """Exits with `code` after `runs_for` fake seconds; on SIGTERM, after `term_delay` (None: ignores it)."""

    clock: FakeClock
    runs_for: float
    code: int
    term_delay: float | None = 0.0
    started: float = 0.0
    ends_at: float | None = None
    signals: list[str] = field(default_factory=list)
    note: str | None = None

    def __post_init__(self) -> None:
        self.started = self.clock.now
        self.ends_at = self.started + self.runs_for

    def wait(self, timeout: float) -> int | None:
        assert self.ends_at is not None
        if self.clock.now + timeout >= self.ends_at:
            self.clock.now = max(self.clock.now, self.ends_at)
            return self.code
        self.clock.now += timeout
        return None

    def terminate(self) -> None:
        self.signals.append("TERM")
        if self.term_delay is not None and self.ends_at is not None:
            self.ends_at = min(self.ends_at, self.clock.now + self.term_delay)
            self.code = 143

    def kill(self) -> None:
        self.signals.append("KILL")
        if self.ends_at is not None and self.ends_at > self.clock.now:
            self.ends_at = self.clock.now
            self.code = 137


def make_loop(
    clock: FakeClock,
    plan: list[tuple[float, int]],
    *,
    max_attempts: int = 1,
    timeout: float | None = None,
    grace: float = 10,
    stop_at: float | None = None,
    term_delay: float | None = 0.0,
) -> tuple[AttemptLoop, list[FakeAttempt]]:
    started: list[FakeAttempt] = []

    def start(number: int) -> FakeAttempt:
        runs_for, code = plan[number - 1]
        attempt = FakeAttempt(clock, runs_for, code, term_delay)
        started.append(attempt)
        return attempt

    loop = AttemptLoop(
        start,
        max_attempts=max_attempts,
        timeout=timeout,
        grace=grace,
        backoff_base=10,
        clock=clock,
        stop_requested=lambda: stop_at is not None and clock.now >= stop_at,
    )
    return loop, started


def test_a_success_is_one_attempt() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(5, 0)])
    outcome = loop.run()
    assert (outcome.state, outcome.exit_code, len(outcome.attempts)) == (RunState.SUCCEEDED, 0, 1)
    assert clock.now == pytest.approx(1005)
    assert started[0].signals == ["KILL"], "leftovers of the process group are always swept"


def test_failures_are_retried_with_doubling_backoff() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(1, 1), (1, 1), (1, 0)], max_attempts=3)
    outcome = loop.run()
    assert outcome.state is RunState.SUCCEEDED
    assert [a.exit_code for a in outcome.attempts] == [1, 1, 0]
    starts = [attempt.started for attempt in started]
    assert starts[1] - starts[0] == pytest.approx(1 + 10)  # ran 1s, waited 10s
    assert starts[2] - starts[1] == pytest.approx(1 + 20)  # ran 1s, waited 20s
    assert outcome.message == "succeeded after 3 attempts"


def test_the_last_failure_is_the_run_result() -> None:
    outcome = make_loop(FakeClock(), [(1, 2), (1, 7)], max_attempts=2)[0].run()
    assert (outcome.state, outcome.exit_code) == (RunState.FAILED, 7)
    assert outcome.message == "exited with code 7 after 2 attempts"


def test_timeout_terminates_and_is_not_retried() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(100, 0), (1, 0)], max_attempts=2, timeout=30)
    outcome = loop.run()
    assert outcome.state is RunState.TIMED_OUT
    assert len(started) == 1
    assert started[0].signals[0] == "TERM"
    assert clock.now == pytest.approx(1030, abs=0.3)
    assert outcome.message == "stopped after its timeout of 30s"


def test_sigkill_follows_when_sigterm_is_ignored_for_the_grace_period() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(100, 0)], timeout=30, grace=5, term_delay=None)
    outcome = loop.run()
    assert started[0].signals[:2] == ["TERM", "KILL"]
    assert outcome.exit_code == 137
    assert clock.now == pytest.approx(1035, abs=0.3)


def test_timeout_counts_the_whole_run_including_backoff() -> None:
    clock = FakeClock()
    # fails after 20s, then would wait 10s for a retry, but the 25s deadline passes while waiting
    outcome = make_loop(clock, [(20, 1), (1, 0)], max_attempts=2, timeout=25)[0].run()
    assert outcome.state is RunState.TIMED_OUT
    assert len(outcome.attempts) == 1
    assert clock.now == pytest.approx(1025, abs=0.3)


def test_cancel_during_an_attempt() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(100, 0)], stop_at=1010)
    outcome = loop.run()
    assert outcome.state is RunState.CANCELLED
    assert started[0].signals[0] == "TERM"
    assert clock.now == pytest.approx(1010, abs=0.3)


def test_cancel_during_backoff_starts_no_new_attempt() -> None:
    clock = FakeClock()
    loop, started = make_loop(clock, [(1, 1), (1, 0)], max_attempts=2, stop_at=1005)
    outcome = loop.run()
    assert outcome.state is RunState.CANCELLED
    assert len(started) == 1


@pytest.mark.parametrize(
    ("retry", "expected"),
    [(1, 10), (2, 20), (3, 40), (5, 160), (6, MAX_BACKOFF_SECONDS), (30, MAX_BACKOFF_SECONDS)],
)
def test_backoff_doubles_and_is_capped(retry: int, expected: float) -> None:
    assert backoff(retry, 10) == expected


@pytest.mark.parametrize(
    ("ending", "code", "attempt", "state"),
    [
        (Ending.EXITED, 0, 1, RunState.SUCCEEDED),
        (Ending.EXITED, 1, 3, RunState.FAILED),
        (Ending.EXITED, 1, 1, None),
        (Ending.TIMED_OUT, 143, 1, RunState.TIMED_OUT),
        (Ending.CANCELLED, 143, 1, RunState.CANCELLED),
    ],
)
def test_after_attempt(ending: Ending, code: int, attempt: int, state: RunState | None) -> None:
    assert after_attempt(ending, code, attempt, 3, 10).state is state


def test_outcome_is_a_value() -> None:
    outcome = Outcome(RunState.SUCCEEDED, 0, [], "succeeded")
    with pytest.raises(AttributeError):
        outcome.state = RunState.FAILED  # type: ignore[misc]
