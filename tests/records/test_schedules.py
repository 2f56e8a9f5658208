"""Schedule records: slots claimed once across connections and threads, the lease, deletion."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from runner.errors import NotFoundError
from runner.records import RunRecords
from runner.records.schedules import SCHEDULER_LEASE, ScheduleRecords, SlotOutcome
from tests.service.schedules.test_slots import schedule


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def records(database: Path) -> ScheduleRecords:
    store = ScheduleRecords(database)
    store.save(schedule())
    return store


def test_round_trip_and_the_run_table_beside_it(records: ScheduleRecords, database: Path) -> None:
    assert records.get("nightly") == schedule()
    assert records.all() == [schedule()]
    assert RunRecords(database).list() == []  # the same database, with every table
    with pytest.raises(NotFoundError, match="schedule 'nope' not found"):
        records.get("nope")


def test_a_slot_is_claimed_once_by_racing_threads(records: ScheduleRecords, database: Path) -> None:
    racers = [ScheduleRecords(database) for _ in range(8)]
    barrier = threading.Barrier(len(racers))
    wins: list[bool] = []

    def claim(store: ScheduleRecords) -> None:
        barrier.wait()
        wins.append(store.claim_slot("nightly", 1000.0, 5.0))

    threads = [threading.Thread(target=claim, args=(store,)) for store in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert records.get("nightly").last_slot == 1000.0
    assert [(slot.slot, slot.outcome) for slot in records.slots("nightly")] == [(1000.0, SlotOutcome.CLAIMED)]


def test_a_claim_made_from_a_stale_read_is_refused(records: ScheduleRecords) -> None:
    read = records.get("nightly")
    records.update("nightly", paused=True, updated=read.updated + 1)
    assert not records.claim_slot("nightly", 1000.0, 5.0, expect_updated=read.updated)
    assert records.slots("nightly") == []
    assert not records.claim_slot("gone", 1000.0, 5.0)


def test_finishing_a_slot_makes_it_the_last_result(records: ScheduleRecords) -> None:
    assert records.claim_slot("nightly", 1000.0, 5.0)
    records.finish_slot("nightly", 1000.0, SlotOutcome.STARTED, 6.0, run_id="nightly-aaaaaa")
    assert records.claim_slot("nightly", 900.0, 7.0)  # an older slot does not move last_slot back
    records.finish_slot("nightly", 900.0, SlotOutcome.SKIPPED, 8.0, message="busy")
    record = records.get("nightly")
    assert (record.last_slot, record.last_run_id, record.last_outcome, record.last_message) == (
        1000.0,
        "nightly-aaaaaa",
        "skipped",
        "busy",
    )


def test_triggers_are_manual_slots_that_leave_last_slot_alone(records: ScheduleRecords) -> None:
    first = records.record_trigger("nightly", 50.0, "nightly-aaaaaa")
    second = records.record_trigger("nightly", 50.0, "nightly-bbbbbb")  # the same instant: made unique
    assert first == 50.0 and second > first
    assert [slot.manual for slot in records.slots("nightly")] == [True, True]
    assert records.get("nightly").last_slot is None
    assert records.get("nightly").last_run_id == "nightly-bbbbbb"


def test_the_lease_has_one_holder_until_it_expires_or_is_released(records: ScheduleRecords) -> None:
    assert records.acquire_lease(SCHEDULER_LEASE, "a", 100.0, 90.0).holder == "a"
    assert records.acquire_lease(SCHEDULER_LEASE, "b", 150.0, 90.0).holder == "a"
    renewed = records.acquire_lease(SCHEDULER_LEASE, "a", 180.0, 90.0)
    assert renewed.expires == 270.0 and renewed.held_by("a", 269.0) and not renewed.held_by("a", 270.0)
    assert records.acquire_lease(SCHEDULER_LEASE, "b", 269.9, 90.0).holder == "a"
    assert records.acquire_lease(SCHEDULER_LEASE, "b", 270.0, 90.0).holder == "b"
    records.release_lease(SCHEDULER_LEASE, "a")  # not a's any more: nothing happens
    assert records.lease(SCHEDULER_LEASE) is not None
    records.release_lease(SCHEDULER_LEASE, "b")
    assert records.lease(SCHEDULER_LEASE) is None


def test_delete_forgets_the_schedule_and_its_slots(records: ScheduleRecords) -> None:
    records.save(replace(schedule(), name="other"))
    records.claim_slot("nightly", 1000.0, 5.0)
    records.claim_slot("other", 1000.0, 5.0)
    assert records.delete("nightly").name == "nightly"
    assert records.find("nightly") is None and records.slots("nightly") == []
    assert len(records.slots("other")) == 1
    with pytest.raises(NotFoundError):
        records.delete("nightly")
