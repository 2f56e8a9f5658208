"""How many workers a run has, whatever its backend, and a worker index it does not have refused."""

from __future__ import annotations

import pytest

from runner.errors import NotFoundError
from runner.records import RunRecord, RunState
from runner.service.workers import check_worker, workers_of


def record(manifest: str = "spec:\n  command: [x]\n", **launch: object) -> RunRecord:
    return RunRecord(
        id="r-1", job="j", backend="kubernetes", state=RunState.RUNNING, created=0.0, workdir="",
        store_url="file:///s", manifest=manifest, launch=dict(launch),
    )  # fmt: skip


def test_the_launch_details_then_the_manifest_say_it() -> None:
    assert workers_of(record()) == 1
    assert workers_of(record(workers=4)) == 4
    assert workers_of(record("spec:\n  command: [x]\n  workers: 3\n")) == 3
    assert workers_of(record("spec: [workers: no]\n")) == 1  # not a mapping: one worker


def test_a_worker_out_of_range_is_refused_saying_which_there_are() -> None:
    check_worker(record(workers=2), 1)
    check_worker(record(), None)
    with pytest.raises(NotFoundError, match="has no worker 2: it has workers 0 to 1"):
        check_worker(record(workers=2), 2)
    with pytest.raises(NotFoundError, match="has no worker 1: it has only worker 0"):
        check_worker(record(), 1)
