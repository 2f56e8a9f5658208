"""`runner wait`: until a run is launched (its build done, its job handed to the backend) or finished,
as `kubectl wait` and `docker wait` do for scripts: `runner submit -d` returns while the run is building.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from runner.clock import Clock
from runner.errors import RunnerError
from runner.records import RunRecord, RunState
from runner.service.building import ended_building

POLL_SECONDS = 0.5


class Until(StrEnum):
    LAUNCHED = "launched"  # built, and its launch done: pending, running or ended
    FINISHED = "finished"  # nothing more happens to it by itself (RunState.final)


def reached(record: RunRecord, until: Until) -> bool:
    if until is Until.LAUNCHED:
        # A cluster run's record is there before its objects: launched once they are all created
        # (launch["created"]), or once it has ended without them.
        submitting = record.launch.get("created") is False and not record.state.terminal
        return record.state is not RunState.BUILDING and not submitting
    return record.state.final


def never_launched(record: RunRecord) -> RunnerError:
    """A run that ended while building: what a wait for its launch says."""
    return RunnerError(
        f"run {record.id} was never launched: {record.state.value}, {record.message}",
        hint=f"runner logs {record.id} prints its build log",
    )


def wait_for(
    current: Callable[[], RunRecord], until: Until, timeout: float, clock: Clock, shown_timeout: str
) -> RunRecord:
    """The run (current() reads it afresh) once it has reached until; RunnerError when timeout seconds
    pass first, or when it was to be launched and ended building."""
    give_up = clock.monotonic() + timeout
    while True:
        record = current()
        if reached(record, until):
            if until is Until.LAUNCHED and ended_building(record):
                raise never_launched(record)
            return record
        if clock.monotonic() >= give_up:
            raise RunnerError(
                f"timed out after {shown_timeout} waiting for run {record.id} to be {until.value}; "
                f"it is {record.state.value}",
                hint=f"runner status {record.id} shows where it is; runner wait --timeout waits longer",
            )
        clock.sleep(POLL_SECONDS)
