"""A local run's logs through the Backend protocol: read so far, followed on a fake clock, from the store."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.backends.base import LogChunk
from runner.backends.local.logs import FIRST_OUTPUT_SECONDS, FOLLOW_POLL_MAX_SECONDS, FOLLOW_POLL_SECONDS
from runner.backends.local.process import ProcessBackend
from runner.backends.local.workdir import WorkDir
from runner.config import Settings, load_settings
from runner.records import RunRecord, RunRecords, RunState
from runner.store import open_store
from runner.store.collect import run_prefix
from tests.support.fakes import FakeClock


def make_record(tmp_path: Path, **changes: Any) -> RunRecord:
    record = RunRecord(
        id="demo-abc123",
        job="demo",
        backend="process",
        state=RunState.RUNNING,
        created=1000.0,
        workdir=str(tmp_path / "work"),
        store_url=(tmp_path / "store").as_uri(),
        manifest="",
        attempts=1,
        max_attempts=2,
    )
    return replace(record, **changes)


def write_log(record: RunRecord, attempt: int, data: bytes) -> None:
    path = WorkDir(Path(record.workdir)).log(attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        log.write(data)


def write_log_then(record: RunRecord, attempt: int, data: bytes, then: RunRecord) -> RunRecord:
    """write_log, then the record a scripted step reads next."""
    write_log(record, attempt, data)
    return then


def logs(
    record: RunRecord,
    *,
    follow: bool = False,
    attempt: int | None = None,
    current: Callable[[], RunRecord] | None = None,
    clock: FakeClock | None = None,
) -> list[LogChunk]:
    return list(
        ProcessBackend().logs(
            record,
            follow=follow,
            attempt=attempt,
            current=current or (lambda: record),
            clock=clock or FakeClock(),
        )
    )


def test_every_attempt_in_order_or_one_of_them(tmp_path: Path) -> None:
    record = make_record(tmp_path, state=RunState.FAILED, attempts=2)
    write_log(record, 1, b"first\n")
    write_log(record, 2, b"second\n")
    assert logs(record) == [LogChunk(1, b"first\n"), LogChunk(2, b"second\n")]
    assert logs(record, attempt=2) == [LogChunk(2, b"second\n")]


def test_a_collected_run_is_read_from_the_store(tmp_path: Path) -> None:
    record = make_record(tmp_path, state=RunState.SUCCEEDED)
    open_store(record.store_url).put_bytes(
        f"{run_prefix(record.job, record.id)}/logs/attempt-1.log", b"kept\n"
    )
    assert logs(record) == [LogChunk(1, b"kept\n")]  # no work directory any more


def test_following_streams_each_attempt_until_the_run_ends(tmp_path: Path) -> None:
    """The run writes as it is read: attempt 1, a retry, attempt 2's last line after it has ended."""
    clock = FakeClock()
    record = make_record(tmp_path)
    write_log(record, 1, b"one\n")
    script: list[Callable[[RunRecord], RunRecord]] = [
        lambda r: r,  # first read of the record
        lambda r: r,  # nothing new yet: the follower waits
        lambda r: write_log_then(r, 1, b"failed\n", r),
        lambda r: write_log_then(r, 2, b"two\n", replace(r, attempts=2)),
        lambda r: write_log_then(r, 2, b"done\n", replace(r, state=RunState.SUCCEEDED)),
    ]
    seen = [record]

    def current() -> RunRecord:
        step = script.pop(0) if script else (lambda r: r)
        seen.append(step(seen[-1]))
        return seen[-1]

    chunks = logs(record, follow=True, attempt=1, current=current, clock=clock)
    # a followed local run streams every attempt, whatever attempt says (as `runner logs -f` always has)
    assert b"".join(chunk.data for chunk in chunks) == b"one\nfailed\ntwo\ndone\n"
    assert [chunk.attempt for chunk in chunks] == [1, 1, 2, 2]
    # waits on the clock, not for real: soon after a change, then less often
    assert clock.sleeps and clock.sleeps[0] == FOLLOW_POLL_SECONDS
    assert all(FOLLOW_POLL_SECONDS <= pause <= FOLLOW_POLL_MAX_SECONDS for pause in clock.sleeps)


def test_until_the_first_output_the_follow_polls_at_its_fastest_then_slows_down(tmp_path: Path) -> None:
    """A submit follows a run whose container is still starting: its first line must show at once."""
    clock = FakeClock()
    record = make_record(tmp_path)
    polls = 0

    def current() -> RunRecord:
        nonlocal polls
        polls += 1
        if polls == 40:  # 39 polls of nothing: the job is still starting
            write_log(record, 1, b"first\n")
        if polls == 80:
            return replace(record, state=RunState.SUCCEEDED)
        return record

    chunks = logs(record, follow=True, attempt=None, current=current, clock=clock)
    assert b"".join(chunk.data for chunk in chunks) == b"first\n"
    before, after = clock.sleeps[:38], clock.sleeps[38:]
    assert set(before) == {FOLLOW_POLL_SECONDS}, "no slowing down before the first output"
    assert max(after) == FOLLOW_POLL_MAX_SECONDS, "once it came, quiet time slows the poll as before"


def test_a_run_silent_for_long_is_polled_ever_less_often(tmp_path: Path) -> None:
    clock = FakeClock()
    record = make_record(tmp_path)
    polls = 0

    def current() -> RunRecord:
        nonlocal polls
        polls += 1
        return replace(record, state=RunState.SUCCEEDED) if polls > 600 else record

    assert logs(record, follow=True, attempt=None, current=current, clock=clock) == []
    fast = list(itertools.takewhile(lambda pause: pause == FOLLOW_POLL_SECONDS, clock.sleeps))
    assert abs(sum(fast) - FIRST_OUTPUT_SECONDS) <= FOLLOW_POLL_SECONDS, "fast for the first seconds only"
    assert clock.sleeps[len(fast)] > FOLLOW_POLL_SECONDS and clock.sleeps[-1] == FOLLOW_POLL_MAX_SECONDS


@pytest.fixture
def records(home: Path) -> RunRecords:
    return RunRecords(load_settings().database)


def test_nothing_to_adopt_and_refresh_many_is_refresh_one_by_one(tmp_path: Path, records: RunRecords) -> None:
    settings: Settings = load_settings()
    done = make_record(tmp_path, id="demo-done01", state=RunState.SUCCEEDED)
    starting = make_record(tmp_path, id="demo-new001", state=RunState.PENDING, created=9e12)
    for record in (done, starting):
        records.create(record)
    backend = ProcessBackend()
    assert backend.adopt(records, None, settings) == []
    # a finished run stays as it is; one whose supervisor has not recorded itself yet is within its grace
    assert backend.refresh_many([done, starting], records, settings) == {
        done.id: done,
        starting.id: starting,
    }
