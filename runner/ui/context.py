"""What every route reads through: the run service (a fresh one per request), schedules, the time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from runner.records.schedule_view import ScheduleView
from runner.service.runs import RunService
from runner.ui import views

HERE = Path(__file__).parent
RUN_LIMIT = 200

RunsFactory = Callable[[], RunService]
SchedulesLister = Callable[[], list[ScheduleView]]


def _no_schedules() -> list[ScheduleView]:
    return []


def local_schedules() -> list[ScheduleView]:
    """This machine's schedules, with their next run (what `runner schedule list` shows)."""
    from runner.config import load_settings
    from runner.service.schedules.local import LocalSchedules

    return LocalSchedules(load_settings()).list_schedules()


@dataclass(frozen=True)
class Dashboard:
    """runs: a new RunService per request (records are SQLite connections; requests run in a pool)."""

    runs: RunsFactory
    schedules: SchedulesLister = _no_schedules
    now: Callable[[], float] = time.time
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=HERE / "templates"))

    def run_rows(self, job: str, state: str) -> list[dict[str, Any]]:
        records = self.runs().list_runs(job=job or None, limit=RUN_LIMIT)
        if state:
            records = [record for record in records if record.state.value == state]
        moment = self.now()
        return [views.run_row(record, moment) for record in records]

    def schedule_rows(self) -> list[dict[str, Any]]:
        return [views.schedule_row(view) for view in self.schedules()]


def dashboard(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board
