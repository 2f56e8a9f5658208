"""The scheduler loop on a fake clock: nights across DST changes, downtime, concurrency, pause, races."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner.config import Settings
from runner.errors import BackendError
from runner.records import RunState
from runner.records.schedules import SCHEDULER_LEASE, SlotOutcome
from runner.service.schedules.local import LocalSchedules
from runner.service.schedules.scheduler import Scheduler, TickResult
from tests.service.conftest import utc
from tests.support.fakes import FakeClock, FakeLauncher

MakeScheduler = Callable[..., Scheduler]


def run_until(scheduler: Scheduler, clock: FakeClock, end: datetime) -> None:
    scheduler.run_forever(lambda: clock.time() >= end.timestamp())


def launched_at(launcher: FakeLauncher) -> list[datetime]:
    return [datetime.fromtimestamp(when, UTC) for when in launcher.times()]


# ------------------------------------------------------------------ nights and DST


@pytest.mark.parametrize(
    ("cron", "zone", "start", "expected"),
    [
        # Berlin springs forward on 31 March: 02:30 does not exist, the run starts at 03:00 CEST.
        (
            "30 2 * * *",
            "Europe/Berlin",
            utc(2024, 3, 29, 12),
            [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)],
        ),
        # Berlin falls back on 27 October: 02:30 shows twice, the run starts at the first.
        (
            "30 2 * * *",
            "Europe/Berlin",
            utc(2024, 10, 25, 12),
            [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
        ),
        # New York falls back on 3 November: 01:30 shows twice.
        (
            "30 1 * * *",
            "America/New_York",
            utc(2024, 11, 1, 12),
            [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
        ),
    ],
)
def test_a_nightly_schedule_runs_once_a_night_across_a_dst_change(  # noqa: PLR0917 (fixtures)
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
    cron: str,
    zone: str,
    start: datetime,
    expected: list[datetime],
) -> None:
    launcher.end_at_once = True
    clock.set(start)
    service.apply(scheduled(cron=cron, timeZone=zone), "process")
    run_until(make_scheduler(max_sleep=86400), clock, start + timedelta(days=3))
    assert launched_at(launcher) == expected
    history = service.history("nightly")
    assert [slot.outcome for slot in history] == [SlotOutcome.STARTED] * 3
    assert [slot.run_id for slot in reversed(history)] == [run_id for run_id, _ in launcher.launched]


def test_the_loop_never_sleeps_longer_than_its_limit(
    settings: Settings, service: LocalSchedules, clock: FakeClock, scheduled: Callable[..., Path]
) -> None:
    service.apply(scheduled(cron="0 0 1 1 *"), "process")  # next slot is months away
    ticks: list[float] = []

    class Counting(Scheduler):
        def tick(self) -> TickResult:
            ticks.append(clock.time())
            return super().tick()

    scheduler = Counting(settings, clock, launcher=FakeLauncher(clock))
    run_until(scheduler, clock, datetime.fromtimestamp(clock.time() + 120, UTC))
    assert [later - earlier for earlier, later in itertools.pairwise(ticks)] == [30.0] * 3


# ------------------------------------------------------------------ downtime


def test_after_downtime_only_the_latest_missed_night_runs_once(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    launcher.end_at_once = True
    service.apply(scheduled(timeZone="Asia/Seoul"), "process")  # 02:30 KST is 17:30 UTC
    scheduler = make_scheduler()
    clock.set(utc(2024, 3, 1, 17, 30))
    scheduler.tick()
    clock.set(utc(2024, 3, 4, 17, 50))  # down for three nights; back 20 minutes after the fourth's slot
    result = scheduler.tick()
    assert [(r.slot, r.outcome) for r in result.results] == [(utc(2024, 3, 4, 17, 30), SlotOutcome.STARTED)]
    assert scheduler.tick().results == ()
    assert launched_at(launcher) == [utc(2024, 3, 1, 17, 30), utc(2024, 3, 4, 17, 50)]


def test_a_slot_past_its_starting_deadline_is_recorded_as_missed(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    service.apply(scheduled(startingDeadline="10m"), "process")  # 02:30 UTC
    scheduler = make_scheduler()
    clock.set(utc(2024, 3, 2, 2, 41))
    result = scheduler.tick()
    assert [r.outcome for r in result.results] == [SlotOutcome.MISSED]
    assert "past its startingDeadline of 10m" in result.results[0].message
    assert launcher.launched == []
    clock.set(utc(2024, 3, 3, 2, 30))
    assert [r.outcome for r in scheduler.tick().results] == [SlotOutcome.STARTED]
    assert [slot.outcome for slot in service.history("nightly")] == [SlotOutcome.STARTED, SlotOutcome.MISSED]


# ------------------------------------------------------------------ concurrency


def hourly(service: LocalSchedules, scheduled: Callable[..., Path], concurrency: str) -> None:
    service.apply(scheduled("hourly", cron="0 * * * *", concurrency=concurrency), "process")


def test_forbid_skips_a_slot_while_the_last_run_goes_on(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    hourly(service, scheduled, "Forbid")
    scheduler = make_scheduler()
    clock.set(utc(2024, 3, 1, 13))
    (first,) = scheduler.tick().results
    clock.set(utc(2024, 3, 1, 14))
    (skipped,) = scheduler.tick().results
    assert skipped.outcome is SlotOutcome.SKIPPED and first.run_id is not None
    assert first.run_id in skipped.message
    launcher.finish(first.run_id)
    clock.set(utc(2024, 3, 1, 15))
    (third,) = scheduler.tick().results
    assert third.outcome is SlotOutcome.STARTED
    assert len(launcher.launched) == 2
    view = service.get("hourly")
    assert view.last_run is not None and view.last_run == third.run_id


def test_replace_cancels_the_last_run_and_starts_a_new_one(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    hourly(service, scheduled, "Replace")
    scheduler = make_scheduler()
    clock.set(utc(2024, 3, 1, 13))
    (first,) = scheduler.tick().results
    clock.set(utc(2024, 3, 1, 14))
    (second,) = scheduler.tick().results
    assert second.outcome is SlotOutcome.STARTED and second.run_id != first.run_id
    assert launcher.cancelled == [first.run_id]
    assert first.run_id is not None and launcher.runs[first.run_id].state is RunState.CANCELLED
    assert [run.id for run in launcher.active_runs("hourly")] == [second.run_id]


def test_allow_runs_side_by_side(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    hourly(service, scheduled, "Allow")
    scheduler = make_scheduler()
    for hour in (13, 14, 15):
        clock.set(utc(2024, 3, 1, hour))
        scheduler.tick()
    assert len(launcher.active_runs("hourly")) == 3
    assert launcher.cancelled == []


# ------------------------------------------------------------------ pause and resume


def test_a_paused_schedule_runs_nothing_and_resumes_with_the_next_slot(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    launcher.end_at_once = True
    service.apply(scheduled(), "process")
    service.pause("nightly")
    assert service.get("nightly").paused and service.get("nightly").next_run is None
    run_until(make_scheduler(max_sleep=86400), clock, utc(2024, 3, 4, 12))
    assert launcher.launched == []
    service.resume("nightly")
    scheduler = make_scheduler("b", max_sleep=86400)
    assert scheduler.tick().results == ()  # the nights that passed while paused do not run
    view = service.get("nightly")
    assert view.next_run is not None and view.next_run.isoformat() == "2024-03-05T02:30:00+00:00"
    run_until(scheduler, clock, utc(2024, 3, 5, 12))
    assert launched_at(launcher) == [utc(2024, 3, 5, 2, 30)]


def test_a_pause_between_decision_and_claim_wins(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    service.apply(scheduled("hourly", cron="0 * * * *", concurrency="Forbid"), "process")
    scheduler = make_scheduler()
    clock.set(utc(2024, 3, 1, 13))
    clock.now += 1
    # Forbid asks for the active runs after deciding a slot is due: pause right then.
    launcher.on_active_runs = service.pause
    assert scheduler.tick().results == ()
    assert launcher.launched == []


# ------------------------------------------------------------------ two schedulers


def test_a_standby_waits_for_the_lease_and_never_reruns_a_slot(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    launcher.end_at_once = True
    hourly(service, scheduled, "Allow")
    first, second = make_scheduler("first", lease_seconds=90), make_scheduler("second", lease_seconds=90)
    clock.set(utc(2024, 3, 1, 13))
    active = first.tick()
    standby = second.tick()
    assert active.active and not standby.active and standby.holder == "first"
    assert standby.wake_at <= clock.time() + 90
    assert len(launcher.launched) == 1
    # "first" dies without a word at 13:00:30; "second" waits for the lease to lapse, then carries on.
    clock.set(utc(2024, 3, 1, 13, 0) + timedelta(seconds=30))
    first.tick()
    clock.now += 60
    assert not second.tick().active
    clock.now += 31
    took_over = second.tick()
    assert took_over.active and took_over.results == ()  # 13:00 was handled by "first"
    clock.set(utc(2024, 3, 1, 14))
    assert [r.outcome for r in second.tick().results] == [SlotOutcome.STARTED]
    assert not first.tick().active
    assert len(launcher.launched) == 2


def test_a_scheduler_that_stops_hands_the_lease_over_at_once(
    settings: Settings, clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    first, second = make_scheduler("first"), make_scheduler("second")
    first.tick()
    assert not second.tick().active
    run_until(first, clock, datetime.fromtimestamp(clock.time(), UTC))  # stops at once
    assert first.records.lease(SCHEDULER_LEASE) is None
    assert second.tick().active


def test_a_slot_claimed_by_a_scheduler_whose_lease_lapsed_is_not_run_again(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    hourly(service, scheduled, "Allow")
    slow, other = make_scheduler("slow", lease_seconds=60), make_scheduler("other", lease_seconds=60)
    clock.set(utc(2024, 3, 1, 13))
    seen: list[object] = []

    def lease_lapses_during_launch(schedule: object) -> None:
        if not seen:  # the first launch takes long: the other scheduler takes over meanwhile
            seen.append(schedule)
            clock.now += 120
            result = other.tick()
            assert result.active and result.results == ()

    launcher.on_launch = lease_lapses_during_launch
    (started,) = slow.tick().results
    assert started.outcome is SlotOutcome.STARTED
    assert len(launcher.launched) == 1
    assert not slow.tick().active


def test_two_schedulers_deciding_the_same_slot_run_it_once(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    # "slow" reads the schedule and decides 13:00 is due; before it claims the slot its lease lapses
    # and "quick" takes over, decides the same and launches. "slow" then loses the claim.
    hourly(service, scheduled, "Forbid")
    slow, quick = make_scheduler("slow", lease_seconds=60), make_scheduler("quick", lease_seconds=60)
    clock.set(utc(2024, 3, 1, 13))
    interleaved: list[TickResult] = []
    calls: list[str] = []

    def other_scheduler_meanwhile(name: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            clock.now += 61
            interleaved.append(quick.tick())

    launcher.on_active_runs = other_scheduler_meanwhile
    assert slow.tick().results == ()
    assert [r.outcome for r in interleaved[0].results] == [SlotOutcome.STARTED]
    assert len(launcher.launched) == 1


# ------------------------------------------------------------------ failures and other backends


def test_a_failed_launch_is_recorded_and_the_other_schedules_still_run(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    service.apply(scheduled("alpha", cron="0 * * * *"), "process")
    service.apply(scheduled("beta", cron="0 * * * *"), "process")

    def fail_alpha(schedule: object) -> None:
        launcher.fail_with = (
            BackendError("no disk left") if getattr(schedule, "name", "") == "alpha" else None
        )

    launcher.on_launch = fail_alpha
    clock.set(utc(2024, 3, 1, 13))
    results = {r.schedule: r for r in make_scheduler().tick().results}
    assert results["alpha"].outcome is SlotOutcome.FAILED and results["alpha"].message == "no disk left"
    assert results["beta"].outcome is SlotOutcome.STARTED
    assert service.get("alpha").last_outcome == "failed"


def test_cluster_schedules_are_left_to_the_cluster(
    service: LocalSchedules,
    launcher: FakeLauncher,
    clock: FakeClock,
    scheduled: Callable[..., Path],
    make_scheduler: MakeScheduler,
) -> None:
    from dataclasses import replace

    record, _ = service.apply_record(scheduled("hourly", cron="0 * * * *"), "process")
    service.records.save(replace(record, backend="kubernetes"))
    clock.set(utc(2024, 3, 1, 13))
    assert make_scheduler().tick().results == ()
    assert launcher.launched == []
