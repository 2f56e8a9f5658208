"""The scheduler's pure decisions: which slot is due, and what concurrency makes of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from runner.records.schedules import ScheduleRecord
from runner.service.schedules.slots import Action, decide, due_slot, next_slot
from tests.service.conftest import utc

CREATED = utc(2024, 3, 1, 12)


def schedule(**changes: object) -> ScheduleRecord:
    base = ScheduleRecord(
        name="nightly",
        backend="process",
        manifest_path="/jobs/nightly/job.yaml",
        manifest_text="",
        base_dir="/jobs/nightly",
        cron="30 2 * * *",
        time_zone="UTC",
        concurrency="Forbid",
        starting_deadline=3600,
        suspend=False,
        paused=False,
        created=CREATED.timestamp(),
        updated=CREATED.timestamp(),
        since=CREATED.timestamp(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "now", "expected"),
    [
        (schedule(), utc(2024, 3, 2, 2, 29), None),  # not yet
        (schedule(), utc(2024, 3, 2, 2, 30), utc(2024, 3, 2, 2, 30)),
        (schedule(), utc(2024, 3, 5, 9), utc(2024, 3, 5, 2, 30)),  # after downtime: only the newest
        (schedule(last_slot=utc(2024, 3, 2, 2, 30).timestamp()), utc(2024, 3, 2, 9), None),  # handled
        (schedule(since=utc(2024, 3, 2, 3).timestamp()), utc(2024, 3, 2, 9), None),  # resumed after it
        (schedule(created=0, since=utc(2024, 3, 2, 2, 30).timestamp()), utc(2024, 3, 2, 3), None),
        (schedule(paused=True), utc(2024, 3, 2, 2, 30), None),
        (schedule(suspend=True), utc(2024, 3, 2, 2, 30), None),
        (schedule(cron="0 * * * *", time_zone="Asia/Seoul"), utc(2024, 3, 1, 12, 59), None),
        (schedule(cron="0 * * * *", time_zone="Asia/Seoul"), utc(2024, 3, 1, 13, 5), utc(2024, 3, 1, 13)),
    ],
)
def test_due_slot(record: ScheduleRecord, now: datetime, expected: datetime | None) -> None:
    assert due_slot(record, now) == expected


def test_a_slot_past_its_deadline_is_missed_not_started() -> None:
    record = schedule(starting_deadline=600)
    on_time = decide(record, utc(2024, 3, 2, 2, 40), [])
    assert on_time is not None and on_time.action is Action.START
    late = decide(record, utc(2024, 3, 2, 2, 40) + timedelta(seconds=1), [])
    assert late is not None and late.action is Action.MISS and late.slot == utc(2024, 3, 2, 2, 30)
    assert late.reason == "found 10m1s late, past its startingDeadline of 10m"


@pytest.mark.parametrize(
    ("concurrency", "active", "action", "cancel"),
    [
        ("Forbid", [], Action.START, ()),
        ("Forbid", ["nightly-aaaaaa"], Action.SKIP, ()),
        ("Replace", [], Action.START, ()),
        (
            "Replace",
            ["nightly-aaaaaa", "nightly-bbbbbb"],
            Action.REPLACE,
            ("nightly-aaaaaa", "nightly-bbbbbb"),
        ),
        ("Allow", ["nightly-aaaaaa"], Action.START, ()),
    ],
)
def test_concurrency(concurrency: str, active: list[str], action: Action, cancel: tuple[str, ...]) -> None:
    decision = decide(schedule(concurrency=concurrency), utc(2024, 3, 2, 2, 30), active)
    assert decision is not None
    assert (decision.action, decision.cancel) == (action, cancel)
    if action is Action.SKIP:
        assert decision.reason == "concurrency Forbid: nightly-aaaaaa still active"


def test_nothing_to_decide_without_a_due_slot() -> None:
    assert decide(schedule(), utc(2024, 3, 2, 2, 29), ["nightly-aaaaaa"]) is None


def test_next_slot() -> None:
    assert next_slot(schedule(), utc(2024, 3, 2, 2, 29)) == utc(2024, 3, 2, 2, 30)
    assert next_slot(schedule(), utc(2024, 3, 2, 2, 30)) == utc(2024, 3, 3, 2, 30)
    # A slot handled ahead of the clock (another scheduler's clock) is not due again.
    ahead = schedule(last_slot=utc(2024, 3, 3, 2, 30).timestamp())
    assert next_slot(ahead, utc(2024, 3, 2, 3)) == utc(2024, 3, 4, 2, 30)
    assert next_slot(schedule(paused=True), utc(2024, 3, 2)) is None
