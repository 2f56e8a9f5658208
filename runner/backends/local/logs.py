"""A local run's logs: each attempt's file in the run's work directory, or in the store once collected.

read_logs gives what is logged so far; follow_logs streams every attempt's log as it is written until
the run has ended and all of it is read. SupervisedBackend.logs serves both through the Backend protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from runner.backends.base import LogChunk
from runner.backends.local.attempts import WorkDir
from runner.clock import Clock
from runner.errors import NotFoundError
from runner.records import RunRecord
from runner.store import open_store
from runner.store.collect import run_prefix

# A followed log is polled soon after each change (a short job's end is seen within ~10 ms) and ever
# less often while nothing happens (a quiet hours-long job costs four reads a second).
FOLLOW_POLL_SECONDS = 0.01
FOLLOW_POLL_MAX_SECONDS = 0.25
FOLLOW_POLL_GROWTH = 1.5


class _AttemptLog:
    """Reads one attempt's log from the run's work directory, falling back to the store."""

    def __init__(self, record: RunRecord, attempt: int) -> None:
        self.record = record
        self.attempt = attempt
        self.path = WorkDir(Path(record.workdir)).log(attempt)
        self.offset = 0

    def read_new(self) -> bytes:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return b""
        self.offset += len(data)
        return data

    def read_all_finished(self) -> bytes:
        """The rest of a finished attempt's log, from the store if its work directory is gone."""
        if self.path.exists() or self.offset:
            return self.read_new()
        store = open_store(self.record.store_url)
        key = f"{run_prefix(self.record.job, self.record.id)}/logs/attempt-{self.attempt}.log"
        try:
            return store.get_bytes(key)
        except NotFoundError:
            return b""


def read_logs(record: RunRecord, attempt: int | None = None) -> Iterator[LogChunk]:
    """What is logged so far: one attempt, or every attempt in order."""
    numbers = [attempt] if attempt is not None else list(range(1, max(record.attempts, 1) + 1))
    for number in numbers:
        yield LogChunk(number, _AttemptLog(record, number).read_all_finished())


def follow_logs(refresh: Callable[[], RunRecord], clock: Clock) -> Iterator[LogChunk]:
    """Stream every attempt's log as it is written, until the run has ended and all is read."""
    record = refresh()
    current = _AttemptLog(record, 1)
    pause = FOLLOW_POLL_SECONDS
    while True:
        data = current.read_new()
        if data:
            pause = FOLLOW_POLL_SECONDS
            yield LogChunk(current.attempt, data)
            continue
        record = refresh()
        if record.attempts > current.attempt:
            current = _AttemptLog(record, current.attempt + 1)
            continue
        if record.state.final:
            rest = current.read_all_finished()
            if rest:
                yield LogChunk(current.attempt, rest)
            return
        clock.sleep(pause)
        pause = min(pause * FOLLOW_POLL_GROWTH, FOLLOW_POLL_MAX_SECONDS)
