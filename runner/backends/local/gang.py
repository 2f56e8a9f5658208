"""The workers of one attempt of a multi-worker run, as one Attempt: all of them, or none.

Workers that train together (tf.distribute.MultiWorkerMirroredStrategy) cannot go on without one of
theirs: the others would wait on a collective for ever. So a GangAttempt ends when every worker has
exited 0 (code 0), or as soon as one exits non-zero: the others are then told to stop (SIGTERM), given
the grace period, and killed; the attempt's code is the first failing worker's, and its note says
which worker that was. The attempt loop (attempts.py) sees one attempt: a retry restarts every worker,
a cancel or timeout stops them all.

Nothing here blocks beyond the timeout it is given, and time comes from a Clock, so tests drive it with
fake attempts on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runner.backends.local.attempts import Attempt
from runner.clock import SYSTEM_CLOCK, Clock

# Each wait gives every running worker a share of its timeout, but never less than this: the engine's
# wait on a container needs some time to answer at all.
MIN_SLICE_SECONDS = 0.01


class GangAttempt:
    """N started workers (index = worker) as one Attempt; on_end runs once, after every worker is killed
    (the docker backend removes the run's network there)."""

    def __init__(
        self,
        members: Sequence[Attempt],
        *,
        grace: float,
        clock: Clock = SYSTEM_CLOCK,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.members = list(members)
        self.grace = grace
        self.clock = clock
        self.on_end: Callable[[], None] | None = on_end
        self.codes: list[int | None] = [None] * len(self.members)
        self.failed: int | None = None  # the first worker that exited non-zero
        self.give_up: float | None = None  # once a worker failed: when the others still running are killed
        self.killed = False
        self.note: str | None = None

    def running(self) -> list[int]:
        return [index for index, code in enumerate(self.codes) if code is None]

    def wait(self, timeout: float) -> int | None:
        """The gang's code once every worker has ended; None after timeout seconds. A failed worker's
        fellows are stopped meanwhile, a wait at a time."""
        until = self.clock.monotonic() + timeout
        while True:
            self._poll(max(until - self.clock.monotonic(), 0.0))
            if not self.running():
                return self.code()
            if self.failed is not None:
                self._stop_fellows()
            if self.clock.monotonic() >= until:
                return None

    def _poll(self, timeout: float) -> None:
        """Wait on each running worker for its share of timeout; note whoever ended."""
        running = self.running()
        share = max(timeout / max(len(running), 1), MIN_SLICE_SECONDS)
        for index in running:
            code = self.members[index].wait(share)
            if code is None:
                continue
            self.codes[index] = code
            self.members[index].kill()  # whatever the worker left behind (its process group)
            if code != 0 and self.failed is None:
                self.failed = index
                own = self.members[index].note
                self.note = f"worker {index} failed first" + (f" ({own})" if own else "")

    def _stop_fellows(self) -> None:
        """SIGTERM to the workers still running when one failed; SIGKILL once the grace period is over."""
        if self.give_up is None:
            self.give_up = self.clock.monotonic() + self.grace
            for index in self.running():
                self.members[index].terminate()
        elif not self.killed and self.clock.monotonic() >= self.give_up:
            self.kill()

    def code(self) -> int:
        """The first failing worker's code; else the first non-zero one (all stopped); else 0."""
        if self.failed is not None:
            return self.codes[self.failed] or 0
        return next((code for code in self.codes if code), 0)

    def terminate(self) -> None:
        for index in self.running():
            self.members[index].terminate()

    def kill(self) -> None:
        """SIGKILL every worker (harmless for those gone), then on_end, once."""
        self.killed = True
        for member in self.members:
            member.kill()
        end, self.on_end = self.on_end, None
        if end is not None:
            end()


def worker_gpus(claimed: Sequence[int], per_worker: int, index: int) -> list[int]:
    """Worker index's GPUs of those the run claimed for all its workers (per_worker each, in order)."""
    return list(claimed[index * per_worker : (index + 1) * per_worker])


def start_gang(
    start_worker: Callable[[int], Attempt],
    workers: int,
    *,
    grace: float,
    clock: Clock = SYSTEM_CLOCK,
    on_end: Callable[[], None] = lambda: None,
) -> GangAttempt:
    """Start workers 0 to workers-1 as one attempt. When one cannot be started (start_worker raises),
    those already started are killed and on_end runs before the error goes on: nothing is left."""
    started: list[Attempt] = []
    try:
        for index in range(workers):
            started.append(start_worker(index))
    except BaseException:
        for member in started:
            member.kill()
        on_end()
        raise
    return GangAttempt(started, grace=grace, clock=clock, on_end=on_end)
