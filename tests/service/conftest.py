"""Fixtures for scheduled jobs: settings of a private home, a fake clock and launcher, manifests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.config import Settings, load_settings
from runner.service.schedules.local import LocalSchedules
from runner.service.schedules.scheduler import Scheduler
from tests.conftest import write_job
from tests.support.fakes import FakeClock, FakeLauncher

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def launcher(clock: FakeClock) -> FakeLauncher:
    return FakeLauncher(clock)


@pytest.fixture
def service(settings: Settings, clock: FakeClock, launcher: FakeLauncher) -> LocalSchedules:
    return LocalSchedules(settings, clock, launcher)


@pytest.fixture
def scheduled(tmp_path: Path) -> Callable[..., Path]:
    """Write a manifest with a schedule: scheduled("nightly", cron="30 2 * * *", timeZone=...)."""

    def make(name: str = "nightly", **schedule: Any) -> Path:
        return write_job(tmp_path / "jobs" / name, name, schedule={"cron": "30 2 * * *", **schedule})

    return make


@pytest.fixture
def make_scheduler(
    settings: Settings, clock: FakeClock, launcher: FakeLauncher
) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(holder: str = "a", **options: Any) -> Scheduler:
        scheduler = Scheduler(settings, clock, launcher=launcher, holder=holder, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.records.close()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
