"""`<job>/latest`: written only after MANIFEST.json, never moved back to a run that finished earlier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import StoreError, UnsafePathError
from runner.store import FileStore
from runner.store.latest import Latest, moves_to, read_latest, read_latest_pointer, update_latest
from tests.store.runs import put_run

JOB = "mnist"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def test_a_job_without_a_pointer_has_no_latest(store: FileStore) -> None:
    assert read_latest(store, JOB) is None


def test_the_pointer_names_the_run_and_its_finished_time(store: FileStore, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "mnist-aaaaaa", finished=100.0)
    assert update_latest(store, JOB, "mnist-aaaaaa", 100.0)
    assert read_latest(store, JOB) == "mnist-aaaaaa"
    document = json.loads((tmp_path / "store" / JOB / "latest").read_text())
    assert document == {"job": JOB, "run": "mnist-aaaaaa", "finished": 100.0, "state": "succeeded"}


def test_it_moves_forward_and_never_back_when_runs_finish_out_of_order(
    store: FileStore, tmp_path: Path
) -> None:
    for run_id, finished in (("mnist-zzzzzz", 200.0), ("mnist-aaaaaa", 100.0), ("mnist-mmmmmm", 300.0)):
        put_run(store, tmp_path, JOB, run_id, finished=finished)
    assert update_latest(store, JOB, "mnist-zzzzzz", 200.0)
    assert not update_latest(store, JOB, "mnist-aaaaaa", 100.0)  # collected later, finished earlier
    assert read_latest(store, JOB) == "mnist-zzzzzz"
    assert update_latest(store, JOB, "mnist-mmmmmm", 300.0)
    assert read_latest(store, JOB) == "mnist-mmmmmm"


def test_it_is_never_written_before_the_runs_manifest(store: FileStore, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "mnist-aaaaaa", finished=100.0, complete=False)
    with pytest.raises(StoreError, match=r"MANIFEST\.json is missing"):
        update_latest(store, JOB, "mnist-aaaaaa", 100.0)
    assert not store.exists(f"{JOB}/latest")


def test_a_damaged_pointer_is_reported_to_readers_and_replaced_by_the_next_run(
    store: FileStore, tmp_path: Path
) -> None:
    store.put_bytes(f"{JOB}/latest", b"{not json")
    with pytest.raises(StoreError, match="is damaged"):
        read_latest(store, JOB)
    put_run(store, tmp_path, JOB, "mnist-aaaaaa", finished=100.0)
    assert update_latest(store, JOB, "mnist-aaaaaa", 100.0)
    assert read_latest(store, JOB) == "mnist-aaaaaa"


@pytest.mark.parametrize(
    "document",
    [
        {"run": "../../etc", "finished": 1.0},
        {"run": "other-aaaaaa", "finished": 1.0},
        {"run": "mnist-", "finished": 1.0},
        {"run": "mnist-aaaaaa", "finished": "yesterday"},
        {"run": "mnist-aaaaaa", "finished": True},
        {"run": "mnist-aaaaaa"},
        ["mnist-aaaaaa"],
    ],
)
def test_a_pointer_naming_no_run_of_the_job_is_damaged(store: FileStore, document: object) -> None:
    store.put_bytes(f"{JOB}/latest", json.dumps(document).encode())
    with pytest.raises(StoreError, match="is damaged"):
        read_latest_pointer(store, JOB)


def test_run_ids_of_another_job_are_refused(store: FileStore) -> None:
    with pytest.raises(UnsafePathError, match="runs of job 'mnist' are named mnist-<suffix>"):
        update_latest(store, JOB, "latest", 1.0)


def test_moves_to_compares_finished_times_then_run_ids() -> None:
    current = Latest("mnist-bbbbbb", 100.0)
    assert moves_to(None, current)
    assert moves_to(current, Latest("mnist-aaaaaa", 100.5))
    assert not moves_to(current, Latest("mnist-cccccc", 99.0))
    assert moves_to(current, Latest("mnist-cccccc", 100.0))  # a tie: the greater run id, for every writer
    assert not moves_to(current, Latest("mnist-aaaaaa", 100.0))
    assert moves_to(current, Latest("mnist-bbbbbb", 100.0))  # the same run collected again
