"""RunService asks every backend through the Backend protocol alone: bulk refresh, adoption, logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from runner.backends import BACKENDS, LogChunk
from runner.clock import Clock
from runner.config import Settings
from runner.records import RunRecord, RunRecords, RunState
from runner.service import runs as runs_module
from runner.service.runs import RunService
from tests.support.fakes import FakeClock


@dataclass
class FakeBackend:
    """Records what the service asks; refreshing marks a run running, adopting finds `found`."""

    name: str
    found: list[RunRecord] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def refresh(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord:
        self.calls.append(("refresh", record.id))
        return records.update(record.id, state=RunState.RUNNING)

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
        self.calls.append(("refresh_many", [record.id for record in runs]))
        return {record.id: records.update(record.id, state=RunState.RUNNING) for record in runs}

    def adopt(self, records: RunRecords, namespace: str | None, settings: Settings) -> list[str]:
        self.calls.append(("adopt", namespace))
        for record in self.found:
            records.create(record)
        return [record.id for record in self.found]

    def logs(
        self,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        current: Callable[[], RunRecord],
        clock: Clock,
    ) -> Iterator[LogChunk]:
        self.calls.append(("logs", (record.id, follow, attempt, current().id, clock)))
        yield LogChunk(attempt or 1, f"{self.name} log\n".encode())


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeBackend]:
    made = {name: FakeBackend(name) for name in BACKENDS}
    monkeypatch.setattr(runs_module, "get_backend", lambda name: made[name])
    return made


@pytest.fixture
def service(settings: Settings) -> Iterator[RunService]:
    made = RunService(settings, FakeClock())
    yield made
    made.records.close()


def record(run_id: str, backend: str, state: RunState = RunState.PENDING, created: float = 0.0) -> RunRecord:
    return RunRecord(
        id=run_id,
        job=run_id.rsplit("-", 1)[0],
        backend=backend,
        state=state,
        created=created,
        workdir="",
        store_url="",
        manifest="",
    )


def test_live_runs_are_refreshed_together_per_backend_in_the_listed_order(
    service: RunService, backends: dict[str, FakeBackend]
) -> None:
    listed = [
        record("a-000001", "kubernetes", created=6),
        record("b-000002", "process", created=5),
        record("c-000003", "kubernetes", created=4),
        record("d-000004", "docker", RunState.SUCCEEDED, created=3),  # ended: nobody is asked
        record("e-000005", "process", created=2),
    ]
    for run in listed:
        service.records.create(run)
    fresh = service.list_runs()
    assert [run.id for run in fresh] == [run.id for run in listed]
    assert [run.state for run in fresh] == [RunState.RUNNING] * 3 + [RunState.SUCCEEDED, RunState.RUNNING]
    assert backends["kubernetes"].calls == [("refresh_many", ["a-000001", "c-000003"])]
    assert backends["process"].calls == [("refresh_many", ["b-000002", "e-000005"])]
    assert backends["docker"].calls == []


def test_listing_the_cluster_lets_every_backend_adopt_first(
    service: RunService, backends: dict[str, FakeBackend]
) -> None:
    backends["kubernetes"].found = [record("elsewhere-000001", "kubernetes", RunState.FAILED)]
    assert [run.id for run in service.list_runs(cluster=True, cluster_namespace="team")] == [
        "elsewhere-000001"
    ]
    assert all(backend.calls == [("adopt", "team")] for backend in backends.values())
    service.list_runs()  # without cluster=True nothing is adopted
    assert all(backend.calls == [("adopt", "team")] for backend in backends.values())


def test_runs_adopted_just_now_are_not_refreshed_again_but_the_others_are(
    service: RunService, backends: dict[str, FakeBackend]
) -> None:
    service.records.create(record("known-000001", "kubernetes"))
    backends["kubernetes"].found = [record("elsewhere-000002", "kubernetes", created=1.0)]
    listed = service.list_runs(cluster=True)
    assert [(run.id, run.state) for run in listed] == [
        ("elsewhere-000002", RunState.PENDING),  # as adopted: read from the cluster a moment ago
        ("known-000001", RunState.RUNNING),
    ]
    assert backends["kubernetes"].calls == [("adopt", None), ("refresh_many", ["known-000001"])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_logs_come_from_the_runs_backend(
    service: RunService, backends: dict[str, FakeBackend], backend: str
) -> None:
    service.records.create(replace(record("job-000001", backend), state=RunState.SUCCEEDED))
    chunks = list(service.logs("job-000001", follow=True, attempt=2))
    assert chunks == [LogChunk(2, f"{backend} log\n".encode())]
    assert backends[backend].calls == [("logs", ("job-000001", True, 2, "job-000001", service.clock))]


def test_the_service_never_asks_which_backend_a_run_is_on() -> None:
    text = Path(runs_module.__file__ or "").read_text()
    assert not [name for name in BACKENDS if f'"{name}"' in text or f"'{name}'" in text]
