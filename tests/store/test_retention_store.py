"""Retention against real stores (file:// and s3:// on moto): scanning, deleting, and after_collect."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.store import FileStore, S3Store, Store
from runner.store.collect import read_manifest
from runner.store.housekeeping import Housekeeping, after_collect
from runner.store.latest import read_latest, update_latest
from runner.store.retention import DAY, RetentionPolicy, StoredRun, apply_retention, delete_run, scan_runs
from tests.store.runs import DeleteRecorder, put_run, run_ids

JOB = "nightly"
NOW = 1_750_000_000.0


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return FileStore(tmp_path / "store")
    bucket: str = request.getfixturevalue("bucket")
    return S3Store(bucket, "runs")


def days_ago(days: float) -> float:
    return NOW - days * DAY


def test_scan_finds_each_run_its_completeness_and_finished_time(store: Store, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "nightly-aaaaaa", finished=days_ago(2))
    put_run(store, tmp_path, JOB, "nightly-bbbbbb", finished=None, complete=False)
    store.put_bytes(f"{JOB}/latest", b"{}")  # the pointer is no run
    store.put_bytes(f"{JOB}/notes/readme.txt", b"not a run of the job")
    store.put_bytes("nightly-other/nightly-other-cccccc/MANIFEST.json", b"{}")  # another job
    assert scan_runs(store, JOB) == [
        StoredRun("nightly-aaaaaa", True, days_ago(2)),
        StoredRun("nightly-bbbbbb", False, None),
    ]


def test_without_a_finished_time_a_run_is_dated_by_its_manifest(store: Store, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "nightly-aaaaaa", finished=None)
    store.put_bytes(f"{JOB}/nightly-aaaaaa/run.json", b"{not json")
    put_run(store, tmp_path, JOB, "nightly-bbbbbb", finished=None)
    manifests = {item.key: item.modified for item in store.list(JOB) if item.key.endswith("MANIFEST.json")}
    assert scan_runs(store, JOB) == [
        StoredRun("nightly-aaaaaa", True, manifests[f"{JOB}/nightly-aaaaaa/MANIFEST.json"]),
        StoredRun("nightly-bbbbbb", True, manifests[f"{JOB}/nightly-bbbbbb/MANIFEST.json"]),
    ]


def test_keep_last_deletes_the_oldest_whole_runs(store: Store, tmp_path: Path) -> None:
    for index, run_id in enumerate(["nightly-zzzzzz", "nightly-aaaaaa", "nightly-mmmmmm"]):
        put_run(store, tmp_path, JOB, run_id, finished=days_ago(3 - index))
    pruned = apply_retention(store, JOB, RetentionPolicy(keep_last=2), NOW)
    assert pruned.deleted == ["nightly-zzzzzz"] and pruned.problems == []
    assert run_ids(store, JOB) == {"nightly-aaaaaa", "nightly-mmmmmm"}
    assert store.list(f"{JOB}/nightly-zzzzzz") == []


def test_a_run_being_written_is_kept_even_when_it_is_the_oldest(store: Store, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "nightly-oldest", finished=days_ago(90), complete=False)
    for index in range(3):
        put_run(store, tmp_path, JOB, f"nightly-run{index}", finished=days_ago(3 - index))
    pruned = apply_retention(store, JOB, RetentionPolicy(keep_last=1, keep_days=1), NOW)
    assert pruned.deleted == ["nightly-run0", "nightly-run1"]
    assert run_ids(store, JOB) == {"nightly-oldest", "nightly-run2"}
    assert {item.key for item in store.list(f"{JOB}/nightly-oldest")} == {
        f"{JOB}/nightly-oldest/outputs/model.bin",
        f"{JOB}/nightly-oldest/logs/attempt-1.log",
    }


def test_the_run_latest_names_survives_a_streak_of_failures(store: Store, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "nightly-good00", finished=days_ago(10))
    update_latest(store, JOB, "nightly-good00", days_ago(10))
    for index in range(3):
        put_run(store, tmp_path, JOB, f"nightly-bad{index:03d}", finished=days_ago(3 - index), state="failed")
    pruned = apply_retention(store, JOB, RetentionPolicy(keep_last=1), NOW)
    assert pruned.deleted == ["nightly-bad000", "nightly-bad001"]
    assert run_ids(store, JOB) == {"nightly-good00", "nightly-bad002"}
    assert read_manifest(store, JOB, "nightly-good00") is not None


def test_a_damaged_pointer_stops_retention_from_deleting_anything(store: Store, tmp_path: Path) -> None:
    for index in range(3):
        put_run(store, tmp_path, JOB, f"nightly-run{index}", finished=days_ago(3 - index))
    store.put_bytes(f"{JOB}/latest", b"garbage")
    pruned = apply_retention(store, JOB, RetentionPolicy(keep_last=1), NOW)
    assert pruned.deleted == []
    assert (
        len(pruned.problems) == 1
        and "retention skipped" in pruned.problems[0]
        and "damaged" in pruned.problems[0]
    )
    assert len(run_ids(store, JOB)) == 3


def test_a_run_is_deleted_manifest_first_then_the_rest(store: Store, tmp_path: Path) -> None:
    put_run(store, tmp_path, JOB, "nightly-aaaaaa", finished=days_ago(1))
    recorder = DeleteRecorder(store)
    assert delete_run(recorder, JOB, "nightly-aaaaaa") == 5
    first, rest = recorder.deletes
    assert first == [f"{JOB}/nightly-aaaaaa/MANIFEST.json"]
    assert sorted(rest) == [
        f"{JOB}/nightly-aaaaaa/{name}"
        for name in ("job.yaml", "logs/attempt-1.log", "outputs/model.bin", "run.json")
    ]
    assert store.list(f"{JOB}/nightly-aaaaaa") == []


def test_a_half_deleted_run_reads_as_incomplete_and_is_never_deleted_again(
    store: Store, tmp_path: Path
) -> None:
    for index in range(2):
        put_run(store, tmp_path, JOB, f"nightly-run{index}", finished=days_ago(2 - index))
    failing = DeleteRecorder(store, fail_after=1)  # MANIFEST.json goes, then the store fails
    pruned = apply_retention(failing, JOB, RetentionPolicy(keep_last=1), NOW)
    assert pruned.deleted == []
    assert pruned.problems == ["cannot delete run nightly-run0: the store went away"]
    assert read_manifest(store, JOB, "nightly-run0") is None  # incomplete, not complete with files missing
    assert store.exists(f"{JOB}/nightly-run0/outputs/model.bin")
    again = apply_retention(DeleteRecorder(store), JOB, RetentionPolicy(keep_last=1), NOW)
    assert again.deleted == [] and again.problems == []


def test_after_collect_moves_latest_then_keeps_it_through_retention(store: Store, tmp_path: Path) -> None:
    policy = RetentionPolicy(keep_last=1)
    put_run(store, tmp_path, JOB, "nightly-first0", finished=days_ago(2))
    done = after_collect(
        store, job=JOB, run_id="nightly-first0", succeeded=True, finished=days_ago(2), policy=policy, now=NOW
    )
    assert done == Housekeeping(latest_moved=True)
    assert done.describe() == ""
    put_run(store, tmp_path, JOB, "nightly-failed", finished=days_ago(1), state="failed")
    done = after_collect(
        store, job=JOB, run_id="nightly-failed", succeeded=False, finished=days_ago(1), policy=policy, now=NOW
    )
    assert done == Housekeeping()  # latest (the older, succeeded run) is kept; the failed one is the newest
    assert read_latest(store, JOB) == "nightly-first0"
    put_run(store, tmp_path, JOB, "nightly-second", finished=days_ago(0))
    done = after_collect(
        store, job=JOB, run_id="nightly-second", succeeded=True, finished=days_ago(0), policy=policy, now=NOW
    )
    assert done == Housekeeping(latest_moved=True, deleted=("nightly-first0", "nightly-failed"))
    assert done.describe() == "retention deleted 2 old runs: nightly-first0, nightly-failed"
    assert read_latest(store, JOB) == "nightly-second"
    assert run_ids(store, JOB) == {"nightly-second"}


def test_after_collect_reports_problems_and_never_raises(store: Store, tmp_path: Path) -> None:
    # the run was never collected (no MANIFEST.json): latest does not move to it, and that is said
    put_run(store, tmp_path, JOB, "nightly-aaaaaa", finished=days_ago(0), complete=False)
    done = after_collect(
        store,
        job=JOB,
        run_id="nightly-aaaaaa",
        succeeded=True,
        finished=days_ago(0),
        policy=RetentionPolicy(keep_last=1),
        now=NOW,
    )
    assert not done.latest_moved and done.deleted == ()
    assert len(done.problems) == 1
    assert done.problems[0].startswith(f"cannot update {JOB}/latest: not pointing")
    assert done.describe() == done.problems[0]
    assert not store.exists(f"{JOB}/latest")
