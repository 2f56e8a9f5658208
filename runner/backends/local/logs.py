"""A local run's logs: each attempt's file in the run's work directory, or in the store once collected.

read_logs gives what is logged so far; follow_logs streams every attempt's log as it is written until
the run has ended and all of it is read. SupervisedBackend.logs serves both through the Backend protocol.
A multi-worker run has a log per worker and attempt (workers/<i>/logs/attempt-N.log for worker i >= 1,
in the work directory and the store alike): each chunk says whose it is, and a followed run interleaves
its workers' logs as they are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from runner.backends.base import LogChunk
from runner.backends.local.workdir import WorkDir, worker_count
from runner.clock import Clock
from runner.errors import NotFoundError
from runner.records import RunRecord
from runner.store import open_store
from runner.store.collect import worker_prefix

# A followed log is polled soon after each change (a short job's end is seen within ~10 ms) and ever
# less often while nothing happens (a quiet hours-long job costs four reads a second).
FOLLOW_POLL_SECONDS = 0.01
FOLLOW_POLL_MAX_SECONDS = 0.25
FOLLOW_POLL_GROWTH = 1.5
# Until a followed run's first output, for at most this long, the poll does not slow down: a submit
# waits for its container to start, and its first line is then shown within ~10 ms, not a quarter second.
FIRST_OUTPUT_SECONDS = 5.0


class _AttemptLog:
    """Reads one attempt's log (of one worker) from the run's work directory, falling back to the store."""

    def __init__(self, record: RunRecord, attempt: int, worker: int = 0) -> None:
        self.record = record
        self.attempt = attempt
        self.worker = worker
        self.path = WorkDir(Path(record.workdir)).worker(worker).log(attempt)
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
        key = f"{worker_prefix(self.record.job, self.record.id, self.worker)}/logs/attempt-{self.attempt}.log"
        try:
            return store.get_bytes(key)
        except NotFoundError:
            return b""

    def chunk(self, data: bytes) -> LogChunk:
        return LogChunk(self.attempt, data, worker=self.worker)


def read_logs(record: RunRecord, attempt: int | None = None) -> Iterator[LogChunk]:
    """What is logged so far: one attempt, or every attempt in order; each attempt worker by worker."""
    numbers = [attempt] if attempt is not None else list(range(1, max(record.attempts, 1) + 1))
    for number in numbers:
        for log in _attempt_logs(record, number):
            yield log.chunk(log.read_all_finished())


def _attempt_logs(record: RunRecord, attempt: int) -> list[_AttemptLog]:
    return [_AttemptLog(record, attempt, worker) for worker in range(worker_count(record.launch))]


def follow_logs(refresh: Callable[[], RunRecord], clock: Clock) -> Iterator[LogChunk]:
    """Stream every attempt's log (every worker's) as it is written, until the run has ended and all of
    it is read."""
    record = refresh()
    current = _attempt_logs(record, 1)
    pause = FOLLOW_POLL_SECONDS
    eager_until: float | None = clock.monotonic() + FIRST_OUTPUT_SECONDS  # None once output came
    while True:
        chunks = [log.chunk(data) for log in current if (data := log.read_new())]
        if chunks:
            pause, eager_until = FOLLOW_POLL_SECONDS, None
            yield from chunks
            continue
        record = refresh()
        if record.attempts > current[0].attempt:
            current = _attempt_logs(record, current[0].attempt + 1)
            continue
        if record.state.final:
            for log in current:
                rest = log.read_all_finished()
                if rest:
                    yield log.chunk(rest)
            return
        clock.sleep(pause)
        if eager_until is None or clock.monotonic() >= eager_until:
            pause = min(pause * FOLLOW_POLL_GROWTH, FOLLOW_POLL_MAX_SECONDS)
