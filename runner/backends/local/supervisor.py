"""Entry point of the detached process that owns one local run.

`python -P -m runner.backends.local.supervisor RUN_ID`
`python -P -m runner.backends.local.supervisor --collect RUN_ID`
`python -P -m runner.backends.local.supervisor --await BACKEND` (the run id on stdin: prestart)
(the backends start it as `python -P -S -c BOOTSTRAP PATHS ...`: see supervised.supervisor_command)

It outlives the command that submitted the run. SIGTERM (from `runner cancel`) or SIGINT/SIGHUP
cancels the run; SIGKILL leaves the record for the next runner command to find as lost.

With --collect it is a detached collector: a command that found a run's supervisor (or an earlier
collector) dead started it and recorded its pid as the run's claim (see supervised.py). It stops what
is left of the job, then collects the run as its supervisor would have.

A full disk under RUNNER_HOME does not lose a job's end: the supervisor's record writes wait for space
(RECORDS_PATIENCE_SECONDS) rather than fail, so the job's exit code and log are recorded once there is room.

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

from runner.backends import identity
from runner.backends.local.attempts import (
    Attempt,
    AttemptLoop,
    LocalLaunch,
    Outcome,
    claim_gpus,
    collect_and_finish,
    collect_recorded,
)
from runner.backends.local.family import local_backend
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings, load_settings
from runner.records import RunRecord, RunRecords, RunState

# How long a supervisor's record writes wait for a full disk to have room again before it gives up.
RECORDS_PATIENCE_SECONDS = 3600.0
# How long a collector waits for the command that started it to record it as the run's claim.
CLAIM_WAIT_SECONDS = 30.0


def supervise(run_id: str) -> RunState:
    settings = load_settings()
    records = RunRecords(settings.database, patience=RECORDS_PATIENCE_SECONDS)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    # started with SIGTERM blocked (supervised.cancel_deferred): a cancel sent while it was starting is
    # delivered now, to the handler, rather than having killed it before it could cancel the run
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    record = records.update(
        run_id, supervisor_pid=os.getpid(), supervisor_start=identity.start_time(os.getpid())
    )
    clock = SYSTEM_CLOCK
    try:
        outcome = run_attempts(record, records, settings, clock, stop)
    except Exception as error:  # a bug or an I/O failure in the runner itself: still record and collect
        traceback.print_exc()
        outcome = Outcome(RunState.FAILED, None, [], f"runner error: {error}")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # collecting must not be cut short
    final = collect_and_finish(records.get(run_id), outcome, records, settings, clock)
    records.close()
    notify_settings = record.launch.get("notify")
    if notify_settings:  # only now imported: a run without spec.notify never pays for it
        from runner.backends.local.tell import tell_webhook

        tell_webhook(final, notify_settings, report=lambda message: print(message, file=sys.stderr))
    return final.state


def run_attempts(
    record: RunRecord, records: RunRecords, settings: Settings, clock: Clock, stop: threading.Event
) -> Outcome:
    """Claim the run's GPUs, then run its attempts (retries, timeout, cancellation) to an outcome,
    sampling its processes meanwhile where the backend does (ProcessBackend.telemetry)."""
    run_id = record.id
    launch = LocalLaunch.from_data(record.launch)
    gpus = claim_gpus(record, launch=launch, records=records, clock=clock, stop_requested=stop.is_set)
    if gpus is None:
        return Outcome(RunState.CANCELLED, None, [], "cancelled while waiting for GPUs")
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
    telemetry = backend.telemetry(record)
    if telemetry is None:
        return loop.run()
    telemetry.start()
    try:
        return loop.run()
    finally:
        telemetry.stop()


def collect(run_id: str) -> RunState | None:
    """Collect a run this process was started to collect; None when the claim went to another."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # collecting must not be cut short
    settings = load_settings()
    records = RunRecords(settings.database, patience=RECORDS_PATIENCE_SECONDS)
    clock = SYSTEM_CLOCK
    me = os.getpid()
    give_up = clock.monotonic() + CLAIM_WAIT_SECONDS
    record = records.get(run_id)
    while record.supervisor_pid != me:  # the claimer records this pid right after starting it
        if clock.monotonic() >= give_up:
            return None
        clock.sleep(0.02)
        record = records.get(run_id)
    if record.state is not RunState.COLLECTING:
        return None
    local_backend(record.backend).stop_orphans(record)
    final = collect_recorded(record, records, clock)
    records.close()
    return final.state


def await_run(backend: str) -> int:
    """--await BACKEND: started before its run exists (SupervisedBackend.prestart), it loads what the
    backend needs to start an attempt while the run id comes on stdin (nothing when the submit launched
    nothing). Then its output goes to the run's supervisor.log."""
    local_backend(backend).warm()
    run_id = sys.stdin.readline().strip()
    if not run_id:
        return 0
    log = os.open(
        load_settings().work_root / run_id / "supervisor.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT
    )
    quiet = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((quiet, 0), (log, 1), (log, 2)):
        os.dup2(source, target)
    supervise(run_id)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--await":
        return await_run(argv[1])
    if len(argv) == 2 and argv[0] == "--collect":
        collect(argv[1])
        return 0
    if len(argv) != 1:
        print("usage: python -m runner.backends.local.supervisor [--collect] RUN_ID", file=sys.stderr)
        return 2
    supervise(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
