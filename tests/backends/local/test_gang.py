"""A multi-worker attempt as one: all workers succeed, or the first failure stops the others. Fake time."""

from __future__ import annotations

import math

import pytest

from runner.backends.local.attempts import AttemptLoop
from runner.backends.local.gang import GangAttempt, start_gang
from runner.records import RunState
from tests.backends.local.test_attempts import FakeAttempt
from tests.support.fakes import FakeClock


def gang_of(
    clock: FakeClock, plan: list[tuple[float, int]], *, grace: float = 10, term_delay: float | None = 0.0
) -> tuple[GangAttempt, list[FakeAttempt], list[bool]]:
    members = [FakeAttempt(clock, runs_for, code, term_delay) for runs_for, code in plan]
    ended: list[bool] = []
    return GangAttempt(members, grace=grace, clock=clock, on_end=lambda: ended.append(True)), members, ended


def wait_out(gang: GangAttempt, clock: FakeClock, limit: float = 10_000) -> int:
    while (code := gang.wait(0.2)) is None:
        assert clock.now < limit, "the gang never ended"
    return code


def test_a_gang_succeeds_when_every_worker_exits_zero_and_stops_none() -> None:
    clock = FakeClock(0.0)
    gang, members, _ = gang_of(clock, [(5, 0), (8, 0), (3, 0)])
    assert wait_out(gang, clock) == 0
    assert clock.now == pytest.approx(8, abs=0.5)
    assert gang.note is None
    assert all("TERM" not in member.signals for member in members)


def test_the_first_failure_stops_the_others_and_gives_its_code() -> None:
    clock = FakeClock(0.0)
    gang, members, _ = gang_of(clock, [(math.inf, 0), (5, 3), (math.inf, 0)], term_delay=1.0)
    assert wait_out(gang, clock) == 3
    assert members[0].signals[0] == "TERM" and members[2].signals[0] == "TERM"
    assert clock.now == pytest.approx(6, abs=0.5)  # the others obeyed SIGTERM within a second
    assert gang.note == "worker 1 failed first"


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    clock = FakeClock(0.0)
    gang, members, ended = gang_of(clock, [(math.inf, 0), (2, 7)], grace=4, term_delay=None)
    assert wait_out(gang, clock) == 7
    assert members[0].signals[:2] == ["TERM", "KILL"]
    assert clock.now == pytest.approx(6, abs=0.5)
    assert ended == [True]  # on_end ran once everything was killed


def test_the_failing_worker_note_comes_with_its_own() -> None:
    clock = FakeClock(0.0)
    gang, members, _ = gang_of(clock, [(1, 137), (math.inf, 0)])
    members[0].note = "killed: out of memory"
    assert wait_out(gang, clock) == 137
    assert gang.note == "worker 0 failed first (killed: out of memory)"


def test_a_worker_that_cannot_start_leaves_nothing_started() -> None:
    clock = FakeClock(0.0)
    started: list[FakeAttempt] = []
    ended: list[bool] = []

    def start(index: int) -> FakeAttempt:
        if index == 2:
            raise RuntimeError("no engine")
        started.append(FakeAttempt(clock, math.inf, 0))
        return started[-1]

    with pytest.raises(RuntimeError):
        start_gang(start, 3, grace=10, clock=clock, on_end=lambda: ended.append(True))
    assert [member.signals for member in started] == [["KILL"], ["KILL"]]
    assert ended == [True]


def test_kill_stops_every_worker_and_ends_once() -> None:
    clock = FakeClock(0.0)
    gang, members, ended = gang_of(clock, [(math.inf, 0), (math.inf, 0)])
    gang.kill()
    gang.kill()
    assert all(member.signals == ["KILL", "KILL"] for member in members)
    assert ended == [True]
    assert wait_out(gang, clock) == 137


def loop_over_gangs(
    clock: FakeClock,
    plans: list[list[tuple[float, int]]],
    *,
    max_attempts: int,
    timeout: float | None,
    stop_at: float | None = None,
) -> tuple[AttemptLoop, list[list[FakeAttempt]]]:
    gangs: list[list[FakeAttempt]] = []

    def start(number: int) -> GangAttempt:
        plan = plans[number - 1]
        members: list[FakeAttempt] = []

        def start_worker(index: int) -> FakeAttempt:
            members.append(FakeAttempt(clock, *plan[index], term_delay=1.0))
            return members[-1]

        gangs.append(members)
        return start_gang(start_worker, len(plan), grace=10, clock=clock)

    loop = AttemptLoop(
        start,
        max_attempts=max_attempts,
        timeout=timeout,
        grace=10,
        backoff_base=1,
        clock=clock,
        stop_requested=lambda: stop_at is not None and clock.now >= stop_at,
    )
    return loop, gangs


def test_a_retry_restarts_every_worker() -> None:
    clock = FakeClock(0.0)
    loop, gangs = loop_over_gangs(
        clock, [[(math.inf, 0), (2, 3)], [(4, 0), (5, 0)]], max_attempts=2, timeout=None
    )
    outcome = loop.run()
    assert outcome.state is RunState.SUCCEEDED
    assert [item.exit_code for item in outcome.attempts] == [3, 0]
    assert len(gangs) == 2 and all(len(members) == 2 for members in gangs)
    assert gangs[0][0].signals[0] == "TERM"  # worker 0 of attempt 1 was stopped when worker 1 failed


def test_a_failed_gang_says_which_worker_failed() -> None:
    clock = FakeClock(0.0)
    loop, _ = loop_over_gangs(clock, [[(math.inf, 0), (2, 3)]], max_attempts=1, timeout=None)
    outcome = loop.run()
    assert outcome.state is RunState.FAILED and outcome.exit_code == 3
    assert outcome.message == "worker 1 failed first: exited with code 3"


def test_cancel_and_timeout_stop_every_worker() -> None:
    clock = FakeClock(0.0)
    loop, gangs = loop_over_gangs(
        clock, [[(math.inf, 0), (math.inf, 0)]], max_attempts=1, timeout=None, stop_at=5.0
    )
    assert loop.run().state is RunState.CANCELLED
    assert all(member.signals[0] == "TERM" for member in gangs[0])
    clock = FakeClock(0.0)
    loop, gangs = loop_over_gangs(clock, [[(math.inf, 0), (math.inf, 0)]], max_attempts=1, timeout=30)
    assert loop.run().state is RunState.TIMED_OUT
    assert all(member.signals[0] == "TERM" for member in gangs[0])
