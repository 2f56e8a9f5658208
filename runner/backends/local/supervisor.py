"""Entry point of the detached process that owns one local run.

`python -m runner.backends.local.supervisor RUN_ID`

It outlives the command that submitted the run. SIGTERM (from `runner cancel`) or SIGINT/SIGHUP
cancels the run; SIGKILL leaves the record for the next runner command to find as lost.

The run's backend (runner.backends.local.family, by the record's name) starts each attempt; the loop,
the GPUs and collection are the same for all. Only that backend's module is imported: a process run's
supervisor never loads the docker SDK, pydantic or the manifest model.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from types import FrameType

from runner.backends.local import procs
from runner.backends.local.attempts import (
    Attempt,
    AttemptLoop,
    LocalLaunch,
    Outcome,
    claim_gpus,
    collect_and_finish,
)
from runner.backends.local.family import local_backend
from runner.clock import SYSTEM_CLOCK
from runner.config import load_settings
from runner.records import RunRecords, RunState


def supervise(run_id: str) -> RunState:
    settings = load_settings()
    records = RunRecords(settings.database)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)

    record = records.update(
        run_id, supervisor_pid=os.getpid(), supervisor_start=procs.start_time(os.getpid())
    )
    clock = SYSTEM_CLOCK
    try:
        launch = LocalLaunch.from_data(record.launch)
        gpus = claim_gpus(record, launch=launch, records=records, clock=clock, stop_requested=stop.is_set)
        if gpus is None:
            outcome = Outcome(RunState.CANCELLED, None, [], "cancelled while waiting for GPUs")
        else:
            records.update(run_id, state=RunState.RUNNING, started=clock.time(), message="")

            def on_attempt(number: int) -> None:
                of = f"attempt {number} of {record.max_attempts}" if record.max_attempts > 1 else ""
                records.update(run_id, attempts=number, message=of)

            def on_wait(message: str) -> None:
                records.update(run_id, message=message)

            backend = local_backend(record.backend)

            def start(number: int) -> Attempt:
                return backend.start_attempt(
                    record, number, launch=launch, records=records, gpus=gpus, settings=settings
                )

            loop = AttemptLoop(
                start,
                max_attempts=record.max_attempts,
                timeout=launch.timeout,
                grace=settings.grace_seconds,
                backoff_base=settings.backoff_seconds,
                clock=clock,
                stop_requested=stop.is_set,
                on_attempt=on_attempt,
                on_wait=on_wait,
            )
            outcome = loop.run()
    except Exception as error:  # a bug or an I/O failure in the runner itself: still record and collect
        traceback.print_exc()
        outcome = Outcome(RunState.FAILED, None, [], f"runner error: {error}")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # collecting must not be cut short
    final = collect_and_finish(records.get(run_id), outcome, records, settings, clock)
    records.close()
    return final.state


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m runner.backends.local.supervisor RUN_ID", file=sys.stderr)
        return 2
    supervise(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
