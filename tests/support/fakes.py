"""A clock that only moves when told (or slept on), and a launcher that records runs in memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from runner.records import RunRecord, RunState
from runner.records.schedules import ScheduleRecord
from runner.spec.labels import SCHEDULE_LABEL


class FakeClock:
    """runner.clock.Clock on a fake timeline: sleep advances it at once, and is remembered."""

    def __init__(self, start: datetime | float = 1000.0) -> None:
        self.now = start.timestamp() if isinstance(start, datetime) else start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps.append(seconds)

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


class FakeLauncher:
    """Runs that exist only here: they stay running until finished, unless ``end_at_once``."""

    def __init__(self, clock: FakeClock, *, end_at_once: bool = False) -> None:
        self.clock = clock
        self.end_at_once = end_at_once
        self.runs: dict[str, RunRecord] = {}
        self.launched: list[tuple[str, float]] = []  # (run id, when)
        self.cancelled: list[str] = []
        self.fail_with: Exception | None = None
        self.on_launch: Callable[[ScheduleRecord], object] | None = None  # before each launch, to interleave
        self.on_active_runs: Callable[[str], object] | None = None  # before each look at the active runs

    def launch(self, schedule: ScheduleRecord) -> RunRecord:
        if self.on_launch is not None:
            self.on_launch(schedule)
        if self.fail_with is not None:
            raise self.fail_with
        run_id = f"{schedule.name}-{len(self.runs) + 1:06d}"
        state = RunState.SUCCEEDED if self.end_at_once else RunState.RUNNING
        record = RunRecord(
            id=run_id,
            job=schedule.name,
            backend=schedule.backend,
            state=state,
            created=self.clock.time(),
            workdir="",
            store_url="",
            manifest=schedule.manifest_text,
            labels={SCHEDULE_LABEL: schedule.name},
        )
        self.runs[run_id] = record
        self.launched.append((run_id, self.clock.time()))
        return record

    def active_runs(self, schedule: str) -> list[RunRecord]:
        if self.on_active_runs is not None:
            self.on_active_runs(schedule)
        return [
            run
            for run in self.runs.values()
            if run.labels.get(SCHEDULE_LABEL) == schedule and not run.state.terminal
        ]

    def cancel(self, run: RunRecord) -> None:
        self.cancelled.append(run.id)
        self.finish(run.id, RunState.CANCELLED)

    def find(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def finish(self, run_id: str, state: RunState = RunState.SUCCEEDED) -> None:
        record = self.runs[run_id]
        self.runs[run_id] = RunRecord(**{**vars(record), "state": state})

    def times(self) -> list[float]:
        return [when for _, when in self.launched]
