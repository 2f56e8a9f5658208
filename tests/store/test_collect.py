"""Tests for runner.store.collect: one run's layout, MANIFEST.json last, and nothing escaping."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store import Digest, FileStore, StoredObject
from runner.store.collect import (
    MAX_DEPTH,
    Collection,
    FileEntry,
    Refusal,
    collect_run,
    collect_worker,
    next_attempt,
    read_manifest,
)

JOB = "mnist"
RUN = "r-20240501-0001"
PREFIX = f"{JOB}/{RUN}"
MANIFEST_TEXT = "apiVersion: runner/v1\nkind: Job\nmetadata:\n  name: mnist\n"
SUMMARY: dict[str, Any] = {"state": "succeeded", "exitCode": 0, "attempts": [{"number": 1}]}
SECRET = b"root:x:0:0:the-secret-that-must-not-leak"
MiB = 1024 * 1024


@dataclass
class RecordingStore:
    """A FileStore that records the key of every put, in order, and can act before one."""

    inner: FileStore
    puts: list[str] = field(default_factory=list)
    before_put: Callable[[str], None] | None = None
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.inner.url

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        if self.before_put is not None:
            self.before_put(key)
        self.puts.append(key)
        return self.inner.put_stream(key, source)

    def put_bytes(self, key: str, data: bytes) -> Digest:
        return self.put_stream(key, io.BytesIO(data))

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def download(self, key: str, destination: Path) -> Digest:
        return self.inner.download(key, destination)

    def list(self, prefix: str) -> list[StoredObject]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, keys: Sequence[str]) -> None:
        self.inner.delete(keys)

    def location(self, key: str) -> str:
        return self.inner.location(key)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> RecordingStore:
    return RecordingStore(FileStore(root))


@pytest.fixture
def run_dir(root: Path) -> Path:
    return root / JOB / RUN


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A run's work directory with outputs/ and logs/ as a training job leaves them."""
    work = tmp_path / "work"
    outputs = work / "outputs"
    (outputs / "saved_model/variables").mkdir(parents=True)
    (outputs / "plots").mkdir()
    (outputs / "model.keras").write_bytes(os.urandom(50_000))
    (outputs / "model.h5").write_bytes(b"\x89HDF\r\n" + os.urandom(1000))
    (outputs / "metrics.json").write_text('{"accuracy": 0.98}\n')
    (outputs / "plots/loss.png").write_bytes(b"\x89PNG" + os.urandom(300))
    (outputs / "saved_model/saved_model.pb").write_bytes(os.urandom(700))
    (outputs / "saved_model/variables/variables.index").write_bytes(os.urandom(30))
    (outputs / "empty.txt").write_bytes(b"")
    (work / "logs").mkdir()
    (work / "logs/attempt-1.log").write_text("epoch 1\nCUDA error\n")
    (work / "logs/attempt-2.log").write_text("epoch 1\nepoch 2\ndone\n")
    return work


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the outputs, with a secret file in it."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "passwd").write_bytes(SECRET)
    return directory


def collect(
    store: RecordingStore,
    work: Path | None,
    *,
    summary: dict[str, Any] | None = None,
    outputs: Path | None = None,
    logs: Path | None = None,
) -> Collection:
    return collect_run(
        store,
        job=JOB,
        run_id=RUN,
        manifest_text=MANIFEST_TEXT,
        summary=SUMMARY if summary is None else summary,
        logs_dir=logs if logs is not None else (work / "logs" if work else None),
        outputs_dir=outputs if outputs is not None else (work / "outputs" if work else None),
    )


def collect_within(seconds: float, store: RecordingStore, work: Path) -> Collection:
    """Collect in a thread: a collection that hangs (on a FIFO, say) fails the test, not the suite."""
    result: list[Collection] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(collect(store, work))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in work.rglob("*"):  # let the stuck thread go
            if fifo.is_fifo():
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"collection hung for {seconds} s")
    if errors:
        raise errors[0]
    return result[0]


def files_below(top: Path) -> dict[str, bytes]:
    """Every file below top, relative path to contents; fails on anything else (links, FIFOs)."""
    found = {}
    for directory, _dirs, files in os.walk(top):
        for name in files:
            path = Path(directory) / name
            assert path.is_file() and not path.is_symlink(), path
            found[path.relative_to(top).as_posix()] = path.read_bytes()
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "MANIFEST.json").read_bytes())
    return data


def run_json(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "run.json").read_bytes())
    return data


def refused_in_run_json(run_dir: Path) -> dict[str, str]:
    return {item["path"]: item["reason"] for item in run_json(run_dir)["refused"]}


def assert_manifest_matches_the_files(run_dir: Path) -> None:
    """MANIFEST.json lists exactly every other file, each with its real size and sha256."""
    stored = files_below(run_dir)
    manifest = manifest_of(run_dir)
    assert manifest["job"] == JOB
    assert manifest["run"] == RUN
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert len(listed) == len(manifest["files"])
    assert set(listed) == set(stored) - {"MANIFEST.json"}
    for path, entry in listed.items():
        assert entry == {"path": path, "size": len(stored[path]), "sha256": sha256(stored[path])}


def assert_secret_not_stored(root: Path) -> None:
    for path, data in files_below(root).items():
        assert SECRET not in data, path


# --- layout ----------------------------------------------------------------------------------


def test_a_run_is_collected_in_the_documented_layout(
    store: RecordingStore, work: Path, run_dir: Path, root: Path
) -> None:
    collection = collect(store, work)
    stored = files_below(root)
    sources = files_below(work)
    expected = {f"{JOB}/{RUN}/{path}": data for path, data in sources.items()}
    expected[f"{PREFIX}/job.yaml"] = MANIFEST_TEXT.encode()
    expected[f"{PREFIX}/run.json"] = stored[f"{PREFIX}/run.json"]
    expected[f"{PREFIX}/MANIFEST.json"] = stored[f"{PREFIX}/MANIFEST.json"]
    assert stored == expected  # nothing else: no temporary files, nothing outside <job>/<run-id>/
    assert run_json(run_dir) == {**SUMMARY, "refused": []}
    assert_manifest_matches_the_files(run_dir)
    assert collection.refused == []
    assert collection.files == [FileEntry(**entry) for entry in manifest_of(run_dir)["files"]]


def test_manifest_digests_match_the_source_files(store: RecordingStore, work: Path, run_dir: Path) -> None:
    collect(store, work)
    for entry in manifest_of(run_dir)["files"]:
        area, _, rest = entry["path"].partition("/")
        if area in ("outputs", "logs"):
            data = (work / area / rest).read_bytes()
            assert entry["size"] == len(data)
            assert entry["sha256"] == sha256(data)


def test_manifest_lists_files_in_collection_order(store: RecordingStore, work: Path, run_dir: Path) -> None:
    collect(store, work)
    assert [entry["path"] for entry in manifest_of(run_dir)["files"]] == [
        "outputs/empty.txt",
        "outputs/metrics.json",
        "outputs/model.h5",
        "outputs/model.keras",
        "outputs/plots/loss.png",
        "outputs/saved_model/saved_model.pb",
        "outputs/saved_model/variables/variables.index",
        "logs/attempt-1.log",
        "logs/attempt-2.log",
        "job.yaml",
        "run.json",
    ]


def test_manifest_is_written_last(store: RecordingStore, work: Path) -> None:
    complete_before_manifest: list[list[str]] = []

    def before_put(key: str) -> None:
        if key.endswith("/MANIFEST.json"):
            complete_before_manifest.append([item.key for item in store.list(PREFIX)])

    store.before_put = before_put
    collect(store, work)
    assert store.puts[-1] == f"{PREFIX}/MANIFEST.json"
    assert store.puts.count(f"{PREFIX}/MANIFEST.json") == 1
    assert store.puts[-3:-1] == [f"{PREFIX}/job.yaml", f"{PREFIX}/run.json"]
    # when MANIFEST.json is put, everything it lists is already there
    assert complete_before_manifest == [sorted(store.puts[:-1])]


def test_run_json_keeps_the_summary_and_adds_refusals(
    store: RecordingStore, work: Path, run_dir: Path
) -> None:
    summary = {"state": "failed", "exitCode": 3, "gpus": [0, 1], "host": "gpu-7", "image": {"id": "sha"}}
    collect(store, work, summary=summary)
    assert run_json(run_dir) == {**summary, "refused": []}
    assert (run_dir / "run.json").read_text().endswith("}\n")


def test_an_incomplete_run_has_no_manifest(store: RecordingStore, work: Path, run_dir: Path) -> None:
    def fail_on_manifest(key: str) -> None:
        if key.endswith("/MANIFEST.json"):
            raise StoreError("disk full")

    store.before_put = fail_on_manifest
    with pytest.raises(StoreError, match="disk full"):
        collect(store, work)
    assert (run_dir / "run.json").exists()
    assert not (run_dir / "MANIFEST.json").exists()
    assert read_manifest(store, JOB, RUN) is None


@pytest.mark.parametrize(("job", "run_id"), [("..", RUN), (JOB, "../other"), ("a/b", RUN), ("", RUN)])
def test_unsafe_job_or_run_id_is_refused_before_anything_is_written(
    store: RecordingStore, work: Path, root: Path, job: str, run_id: str
) -> None:
    with pytest.raises(UnsafePathError):
        collect_run(
            store,
            job=job,
            run_id=run_id,
            manifest_text=MANIFEST_TEXT,
            summary=SUMMARY,
            logs_dir=work / "logs",
            outputs_dir=work / "outputs",
        )
    assert store.puts == []
    assert not root.exists()


# --- failed, timed-out and cancelled runs ------------------------------------------------------


@pytest.mark.parametrize("state", ["failed", "timed-out", "cancelled", "lost"])
@pytest.mark.parametrize("outputs", ["missing", "empty", "none"])
@pytest.mark.parametrize("logs", ["missing", "empty", "none"])
def test_runs_without_outputs_or_logs_are_still_collected(
    store: RecordingStore, tmp_path: Path, run_dir: Path, *, state: str, outputs: str, logs: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    dirs: dict[str, Path | None] = {}
    for area, how in (("outputs", outputs), ("logs", logs)):
        dirs[area] = None if how == "none" else work / area
        if how == "empty":
            (work / area).mkdir()
    summary = {"state": state, "exitCode": None, "message": f"run {state}"}
    collection = collect_run(
        store,
        job=JOB,
        run_id=RUN,
        manifest_text=MANIFEST_TEXT,
        summary=summary,
        logs_dir=dirs["logs"],
        outputs_dir=dirs["outputs"],
    )
    assert sorted(files_below(run_dir)) == ["MANIFEST.json", "job.yaml", "run.json"]
    assert run_json(run_dir) == {**summary, "refused": []}
    assert [entry.path for entry in collection.files] == ["job.yaml", "run.json"]
    assert_manifest_matches_the_files(run_dir)
    assert read_manifest(store, JOB, RUN) == collection.files


def test_a_failed_run_with_logs_but_no_outputs(store: RecordingStore, work: Path, run_dir: Path) -> None:
    collect(store, None, outputs=work / "never-made", logs=work / "logs")
    assert sorted(files_below(run_dir)) == [
        "MANIFEST.json",
        "job.yaml",
        "logs/attempt-1.log",
        "logs/attempt-2.log",
        "run.json",
    ]
    assert_manifest_matches_the_files(run_dir)


# --- read_manifest ---------------------------------------------------------------------------


def test_read_manifest_is_none_before_collection(store: RecordingStore) -> None:
    assert read_manifest(store, JOB, RUN) is None


def test_read_manifest_returns_the_entries(store: RecordingStore, work: Path, run_dir: Path) -> None:
    collection = collect(store, work)
    files = read_manifest(store, JOB, RUN)
    assert files == collection.files
    assert files == [FileEntry(**entry) for entry in manifest_of(run_dir)["files"]]


def test_every_manifest_entry_downloads_with_its_digest(
    store: RecordingStore, work: Path, tmp_path: Path
) -> None:
    collect(store, work)
    files = read_manifest(store, JOB, RUN)
    assert files is not None
    for entry in files:
        digest = store.download(f"{PREFIX}/{entry.path}", tmp_path / "dl" / entry.path)
        assert digest == Digest(entry.size, entry.sha256)
    assert files_below(tmp_path / "dl/outputs") == files_below(work / "outputs")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"job": "mnist"}',
        b'{"files": [{"path": "a"}]}',
        b'{"files": [{"path": "a", "size": "1", "sha256": "' + b"0" * 64 + b'"}]}',
        b'{"files": [{"path": "a", "size": -1, "sha256": "' + b"0" * 64 + b'"}]}',
        b'{"files": [{"path": "a", "size": 1, "sha256": "short"}]}',
        b'{"files": [{"path": 3, "size": 1, "sha256": "' + b"0" * 64 + b'"}]}',
        b'{"files": [{"path": "a", "size": 1, "sha256": "' + b"g" * 64 + b'"}]}',
        b'{"files": [{"path": "a", "size": true, "sha256": "' + b"0" * 64 + b'"}]}',
        b'{"files": 3}',
        b'{"files": [3]}',
        b"\xff\xfe",
    ],
)
def test_a_damaged_manifest_is_a_store_error(store: RecordingStore, content: bytes) -> None:
    store.put_bytes(f"{PREFIX}/MANIFEST.json", content)
    with pytest.raises(StoreError, match=r"MANIFEST\.json is damaged"):
        read_manifest(store, JOB, RUN)


def test_a_manifest_with_fields_from_a_later_version_is_read(store: RecordingStore) -> None:
    entry = {"path": "outputs/a", "size": 1, "sha256": "0" * 64, "mediaType": "text/plain"}
    store.put_bytes(f"{PREFIX}/MANIFEST.json", json.dumps({"files": [entry], "version": 2}).encode())
    assert read_manifest(store, JOB, RUN) == [FileEntry("outputs/a", 1, "0" * 64)]


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "outputs/../../x", "a\\b"])
def test_a_manifest_naming_unsafe_paths_is_refused(store: RecordingStore, path: str) -> None:
    entry = {"path": path, "size": 1, "sha256": "0" * 64}
    store.put_bytes(f"{PREFIX}/MANIFEST.json", json.dumps({"files": [entry]}).encode())
    with pytest.raises(UnsafePathError):
        read_manifest(store, JOB, RUN)


def test_read_manifest_refuses_unsafe_run_names(store: RecordingStore) -> None:
    with pytest.raises(UnsafePathError):
        read_manifest(store, "..", RUN)


# --- symlinks ----------------------------------------------------------------------------------


def test_symlinks_out_of_outputs_are_refused_and_recorded(
    store: RecordingStore, work: Path, run_dir: Path, root: Path, outside: Path
) -> None:
    outputs = work / "outputs"
    (outputs / "abs").symlink_to(outside / "passwd")
    (outputs / "plots/rel").symlink_to("../../../outside/passwd")
    (outputs / "dotdot").symlink_to("../../outside/passwd")
    (outputs / "to-logs").symlink_to("../logs/attempt-1.log")  # outside outputs/, though in the work dir
    (outputs / "via-inside").symlink_to("plots/rel")  # inside, to a link that leads out
    collection = collect(store, work)
    real_secret = os.path.realpath(outside / "passwd")
    expected = [
        Refusal("outputs/abs", f"symlink points outside outputs/ (to {real_secret})"),
        Refusal("outputs/dotdot", f"symlink points outside outputs/ (to {real_secret})"),
        Refusal("outputs/plots/rel", f"symlink points outside outputs/ (to {real_secret})"),
        Refusal(
            "outputs/to-logs",
            f"symlink points outside outputs/ (to {os.path.realpath(work / 'logs/attempt-1.log')})",
        ),
        Refusal("outputs/via-inside", f"symlink points outside outputs/ (to {real_secret})"),
    ]
    assert collection.refused == expected
    assert refused_in_run_json(run_dir) == {item.path: item.reason for item in expected}
    for item in expected:
        assert not (run_dir / item.path).exists()
        assert item.path not in [entry.path for entry in collection.files]
    assert_secret_not_stored(root)
    assert_manifest_matches_the_files(run_dir)


def test_symlinks_within_outputs_are_copied_as_file_contents(
    store: RecordingStore, work: Path, run_dir: Path
) -> None:
    outputs = work / "outputs"
    (outputs / "best.keras").symlink_to("model.keras")
    (outputs / "plots/metrics.json").symlink_to("../metrics.json")
    (outputs / "absolute-inside").symlink_to(outputs / "model.h5")
    (outputs / "chain").symlink_to("best.keras")
    collection = collect(store, work)
    assert collection.refused == []
    for link, target in [
        ("best.keras", "model.keras"),
        ("plots/metrics.json", "metrics.json"),
        ("absolute-inside", "model.h5"),
        ("chain", "model.keras"),
    ]:
        stored = run_dir / "outputs" / link
        assert not stored.is_symlink()
        assert stored.read_bytes() == (outputs / target).read_bytes()
    assert_manifest_matches_the_files(run_dir)


def test_symlinked_directories_are_not_followed(
    store: RecordingStore, work: Path, run_dir: Path, root: Path, outside: Path
) -> None:
    outputs = work / "outputs"
    (outputs / "etc").symlink_to(outside)
    (outputs / "up").symlink_to("..")
    (outputs / "again").symlink_to("plots")
    (outputs / "self").symlink_to(".")
    collection = collect(store, work)
    assert collection.refused == [
        Refusal("outputs/again", "symlink to a directory, not followed"),
        Refusal("outputs/etc", f"symlink points outside outputs/ (to {os.path.realpath(outside)})"),
        Refusal("outputs/self", "symlink to a directory, not followed"),
        Refusal("outputs/up", f"symlink points outside outputs/ (to {os.path.realpath(work)})"),
    ]
    assert not (run_dir / "outputs/etc").exists()
    assert not (run_dir / "outputs/again").exists()
    assert_secret_not_stored(root)
    assert_manifest_matches_the_files(run_dir)


def test_dangling_and_looping_symlinks_are_refused(store: RecordingStore, work: Path, run_dir: Path) -> None:
    outputs = work / "outputs"
    (outputs / "dangling").symlink_to("no-such-file")
    (outputs / "loop-a").symlink_to("loop-b")
    (outputs / "loop-b").symlink_to("loop-a")
    (outputs / "self-loop").symlink_to("self-loop")
    collection = collect(store, work)
    reasons = {item.path: item.reason for item in collection.refused}
    assert sorted(reasons) == ["outputs/dangling", "outputs/loop-a", "outputs/loop-b", "outputs/self-loop"]
    assert reasons["outputs/dangling"] == "symlink to nothing: No such file or directory"
    assert reasons["outputs/self-loop"] == "symlink to nothing: Too many levels of symbolic links"
    assert_manifest_matches_the_files(run_dir)


def test_an_outputs_directory_that_is_a_symlink_is_not_followed(
    store: RecordingStore, tmp_path: Path, run_dir: Path, root: Path, outside: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "outputs").symlink_to(outside)
    collection = collect(store, work)
    assert collection.refused == [Refusal("outputs", "a symlink, not a directory: not followed")]
    assert sorted(files_below(run_dir)) == ["MANIFEST.json", "job.yaml", "run.json"]
    assert_secret_not_stored(root)


def test_an_outputs_path_that_is_a_file_is_refused(store: RecordingStore, tmp_path: Path) -> None:
    (tmp_path / "outputs").write_bytes(b"x")
    collection = collect(store, None, outputs=tmp_path / "outputs")
    assert collection.refused == [Refusal("outputs", "cannot read: Not a directory")]


def test_symlinks_in_logs_are_checked_against_logs(
    store: RecordingStore, work: Path, run_dir: Path, outside: Path
) -> None:
    (work / "logs/attempt-3.log").symlink_to(outside / "passwd")
    (work / "logs/latest.log").symlink_to("attempt-2.log")
    collection = collect(store, work)
    real_secret = os.path.realpath(outside / "passwd")
    assert collection.refused == [
        Refusal("logs/attempt-3.log", f"symlink points outside logs/ (to {real_secret})")
    ]
    assert (run_dir / "logs/latest.log").read_bytes() == (work / "logs/attempt-2.log").read_bytes()


# --- special files -----------------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(store: RecordingStore, work: Path, run_dir: Path) -> None:
    os.mkfifo(work / "outputs/pipe")
    (work / "outputs/to-pipe").symlink_to("pipe")
    collection = collect_within(10, store, work)
    assert collection.refused == [
        Refusal("outputs/pipe", "not a regular file (a FIFO)"),
        Refusal("outputs/to-pipe", "symlink to a FIFO, not followed"),
    ]
    assert refused_in_run_json(run_dir) == {
        "outputs/pipe": "not a regular file (a FIFO)",
        "outputs/to-pipe": "symlink to a FIFO, not followed",
    }
    assert_manifest_matches_the_files(run_dir)


def test_a_socket_is_refused(
    store: RecordingStore, work: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(work / "outputs")  # a short path for bind()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind("tensorboard.sock")
        server.listen()
        collection = collect_within(10, store, work)
    assert collection.refused == [Refusal("outputs/tensorboard.sock", "not a regular file (a socket)")]
    assert_manifest_matches_the_files(run_dir)


def test_a_device_file_is_refused_without_being_opened(store: RecordingStore, work: Path) -> None:
    (work / "outputs/null").symlink_to("/dev/null")
    collection = collect(store, work)
    assert collection.refused == [Refusal("outputs/null", "symlink points outside outputs/ (to /dev/null)")]


def test_names_that_are_not_safe_keys_are_refused(store: RecordingStore, work: Path, run_dir: Path) -> None:
    (work / "outputs/back\\slash").write_bytes(b"x")
    (work / "outputs/dir\\name").mkdir()
    (work / "outputs/dir\\name/inner").write_bytes(b"x")
    collection = collect(store, work)
    assert collection.refused == [
        Refusal(
            "outputs/back\\slash",
            "refusing unsafe path 'outputs/back\\\\slash': it must be relative and use '/'",
        ),
        Refusal(
            "outputs/dir\\name",
            "refusing unsafe path 'outputs/dir\\\\name': it must be relative and use '/'",
        ),
    ]
    assert_manifest_matches_the_files(run_dir)


def test_non_utf8_file_names_are_collected(store: RecordingStore, work: Path, run_dir: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    (work / "outputs" / name).write_bytes(b"latin-1 name")
    collection = collect(store, work)
    assert collection.refused == []
    assert (run_dir / "outputs" / name).read_bytes() == b"latin-1 name"
    files = read_manifest(store, JOB, RUN)
    assert files is not None
    assert FileEntry(f"outputs/{name}", 12, sha256(b"latin-1 name")) in files


def test_deep_directories_are_collected_up_to_the_limit(
    store: RecordingStore, tmp_path: Path, run_dir: Path
) -> None:
    outputs = tmp_path / "outputs"
    allowed = outputs.joinpath(*["d"] * MAX_DEPTH)
    allowed.mkdir(parents=True)
    (allowed / "ok.txt").write_bytes(b"ok")
    (allowed / "d").mkdir()
    (allowed / "d" / "too-deep.txt").write_bytes(b"no")
    collection = collect(store, None, outputs=outputs)
    deep = "outputs/" + "/".join(["d"] * MAX_DEPTH)
    assert [entry.path for entry in collection.files] == [f"{deep}/ok.txt", "job.yaml", "run.json"]
    assert collection.refused == [Refusal(f"{deep}/d", f"nested more than {MAX_DEPTH} directories deep")]


# --- files swapped while being collected -------------------------------------------------------


def test_a_file_swapped_for_a_symlink_before_it_is_reached_is_refused(
    store: RecordingStore, work: Path, root: Path, outside: Path
) -> None:
    """Something still running swaps outputs/model.keras for a symlink while metrics.json is stored."""

    def swap(key: str) -> None:
        if key.endswith("outputs/metrics.json"):
            (work / "outputs/model.keras").unlink()
            (work / "outputs/model.keras").symlink_to(outside / "passwd")

    store.before_put = swap
    collection = collect(store, work)
    assert [item.path for item in collection.refused] == ["outputs/model.keras"]
    assert_secret_not_stored(root)


@pytest.fixture
def swap_at_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, Callable[[], None]], None]]:
    """Run an action just before os.open opens a given name: the window after lstat, before open."""
    real_open = os.open
    pending: dict[str, Callable[[], None]] = {}

    def patched(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        action = pending.pop(Path(os.fsdecode(path)).name, None)
        if action is not None:
            action()
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", patched)
    yield pending.__setitem__


def test_a_file_swapped_for_a_symlink_just_before_opening_is_not_followed(
    store: RecordingStore,
    work: Path,
    run_dir: Path,
    *,
    root: Path,
    outside: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    model = work / "outputs/model.keras"

    def swap() -> None:
        model.unlink()
        model.symlink_to(outside / "passwd")

    swap_at_open("model.keras", swap)
    collection = collect(store, work)
    assert collection.refused == [
        Refusal("outputs/model.keras", "replaced by a symlink while being collected: not followed")
    ]
    assert not (run_dir / "outputs/model.keras").exists()
    assert_secret_not_stored(root)
    assert_manifest_matches_the_files(run_dir)


def test_a_file_swapped_for_a_fifo_just_before_opening_does_not_block(
    store: RecordingStore,
    work: Path,
    run_dir: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    model = work / "outputs/model.keras"

    def swap() -> None:
        model.unlink()
        os.mkfifo(model)

    swap_at_open("model.keras", swap)
    collection = collect_within(10, store, work)
    assert collection.refused == [Refusal("outputs/model.keras", "not a regular file (a FIFO)")]
    assert_manifest_matches_the_files(run_dir)


def test_a_file_replaced_by_another_just_before_opening_is_refused(
    store: RecordingStore,
    work: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    model = work / "outputs/model.keras"

    def swap() -> None:
        model.rename(work / "model.keras.old")  # kept, so the new file cannot reuse its inode
        model.write_bytes(b"another file")

    swap_at_open("model.keras", swap)
    collection = collect(store, work)
    assert collection.refused == [Refusal("outputs/model.keras", "replaced while being collected")]


def test_a_directory_swapped_for_a_symlink_just_before_opening_is_not_followed(
    store: RecordingStore,
    work: Path,
    run_dir: Path,
    *,
    root: Path,
    outside: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    plots = work / "outputs/plots"

    def swap() -> None:
        plots.rename(work / "plots-moved")
        plots.symlink_to(outside)

    swap_at_open("plots", swap)
    collection = collect(store, work)
    assert collection.refused == [Refusal("outputs/plots", "replaced while being collected: not followed")]
    assert not (run_dir / "outputs/plots").exists()
    assert_secret_not_stored(root)


def test_an_inside_symlink_retargeted_outside_just_before_opening_is_refused(
    store: RecordingStore,
    work: Path,
    root: Path,
    outside: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    """best.keras -> model.keras is checked, then model.keras becomes a link out before it is opened."""
    (work / "outputs/best.keras").symlink_to("model.keras")
    model = work / "outputs/model.keras"

    def swap() -> None:
        model.unlink()
        model.symlink_to(outside / "passwd")

    swap_at_open("model.keras", swap)  # the first open of model.keras is through best.keras
    collection = collect(store, work)
    assert [item.path for item in collection.refused] == ["outputs/best.keras", "outputs/model.keras"]
    assert_secret_not_stored(root)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_an_inside_symlink_whose_directory_moves_out_just_before_opening_is_refused(
    store: RecordingStore,
    work: Path,
    run_dir: Path,
    outside: Path,
    swap_at_open: Callable[[str, Callable[[], None]], None],
) -> None:
    """best.png -> plots/loss.png is checked; then plots/ moves out and a symlink takes its place.

    The file is the same one (same inode), so only where it was opened from shows it is outside now.
    """
    (work / "outputs/best.png").symlink_to("plots/loss.png")
    plots = work / "outputs/plots"

    def swap() -> None:
        plots.rename(outside / "plots")
        plots.symlink_to(outside / "plots")

    swap_at_open("loss.png", swap)  # the first open of loss.png is through best.png
    collection = collect(store, work)
    real = os.path.realpath(outside / "plots/loss.png")
    reason = f"symlink points outside outputs/ (to {real})"
    assert collection.refused[0] == Refusal("outputs/best.png", reason)
    assert not (run_dir / "outputs/best.png").exists()


# --- a large output ----------------------------------------------------------------------------


def test_a_20_mib_output_is_streamed_with_the_right_digest(
    store: RecordingStore, tmp_path: Path, run_dir: Path
) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    expected = hashlib.sha256()
    with (outputs / "model.h5").open("wb") as handle:
        for _ in range(20):
            block = os.urandom(MiB)
            expected.update(block)
            handle.write(block)
    tracemalloc.start()
    try:
        collection = collect(store, None, outputs=outputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * MiB, f"collection held {peak / MiB:.1f} MiB at once: it must stream"
    entry = collection.files[0]
    assert entry == FileEntry("outputs/model.h5", 20 * MiB, expected.hexdigest())
    stored = hashlib.sha256()
    with (run_dir / "outputs/model.h5").open("rb") as handle:
        while block := handle.read(MiB):
            stored.update(block)
    assert stored.hexdigest() == expected.hexdigest()
    assert manifest_of(run_dir)["files"][0] == {
        "path": "outputs/model.h5",
        "size": 20 * MiB,
        "sha256": expected.hexdigest(),
    }


# --- the store side ----------------------------------------------------------------------------


def test_a_store_side_symlink_does_not_let_collection_escape(
    store: RecordingStore, work: Path, root: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    (root / JOB).symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="resolves outside the store"):
        collect(store, work)
    assert list(elsewhere.iterdir()) == []


def test_a_store_error_while_storing_an_output_stops_collection(store: RecordingStore, work: Path) -> None:
    def full(key: str) -> None:
        if key.endswith("model.keras"):
            raise StoreError("cannot write: No space left on device")

    store.before_put = full
    with pytest.raises(StoreError):
        collect(store, work)
    assert read_manifest(store, JOB, RUN) is None


def test_get_bytes_of_a_collected_log(store: RecordingStore, work: Path) -> None:
    collect(store, work)
    assert store.get_bytes(f"{PREFIX}/logs/attempt-2.log") == b"epoch 1\nepoch 2\ndone\n"
    with pytest.raises(NotFoundError):
        store.get_bytes(f"{PREFIX}/logs/attempt-9.log")


def test_hard_links_to_files_outside_the_outputs_are_refused(
    store: RecordingStore, work: Path, outside: Path, run_dir: Path
) -> None:
    outputs = work / "outputs"
    os.link(outside / "passwd", outputs / "passwd")
    (outputs / "deep").mkdir()
    os.link(outside / "passwd", outputs / "deep" / "again")  # two names inside, three links in all
    (outputs / "pair-a").write_bytes(b"twins")
    os.link(outputs / "pair-a", outputs / "pair-b")  # every link inside: collected
    (outputs / "via-symlink").symlink_to("passwd")  # a symlink inside, to the outside file's link
    collection = collect(store, work)
    paths = {entry.path for entry in collection.files}
    assert {"outputs/pair-a", "outputs/pair-b"} <= paths
    refused = {item.path: item.reason for item in collection.refused}
    for leak in ("outputs/passwd", "outputs/deep/again", "outputs/via-symlink"):
        assert leak not in paths and leak in refused
        assert refused[leak] == "a hard link to a file outside outputs/ (3 links, 2 inside): not collected"
    assert SECRET not in b"".join(path.read_bytes() for path in run_dir.rglob("*") if path.is_file())


# --- the outputs cap (issue 11, item 12) --------------------------------------------------------


def test_outputs_beyond_the_cap_are_refused_and_listed(
    store: RecordingStore, work: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are taken in the walk's order while they fit; each that does not is refused with the
    reason, and a smaller one after it may still fit. Logs are not capped."""
    outputs = work / "capped"
    (outputs / "d").mkdir(parents=True)
    (outputs / "a.bin").write_bytes(os.urandom(40_000))
    (outputs / "b.bin").write_bytes(os.urandom(40_000))
    (outputs / "c.txt").write_bytes(b"small")
    (outputs / "d/e.bin").write_bytes(os.urandom(40_000))
    (work / "logs/attempt-2.log").write_bytes(b"x" * 200_000)
    monkeypatch.setenv("RUNNER_MAX_OUTPUTS", "50000")
    collection = collect(store, work, outputs=outputs)
    reason = (
        "39.1 KiB, beyond the 48.8 KiB cap on a run's outputs (RUNNER_MAX_OUTPUTS); "
        "{} of it left: not collected"
    )
    assert collection.refused == [
        Refusal("outputs/b.bin", reason.format("9.8 KiB")),
        Refusal("outputs/d/e.bin", reason.format("9.8 KiB")),
    ]
    assert refused_in_run_json(run_dir) == {item.path: item.reason for item in collection.refused}
    stored = set(files_below(run_dir))
    assert {"outputs/a.bin", "outputs/c.txt", "logs/attempt-2.log"} <= stored
    assert not {"outputs/b.bin", "outputs/d/e.bin"} & stored
    assert_manifest_matches_the_files(run_dir)


def test_a_sparse_output_counts_by_its_apparent_size(
    store: RecordingStore, work: Path, run_dir: Path
) -> None:
    with (work / "outputs/sparse.img").open("wb") as sparse:
        sparse.truncate(2 * 2**30)  # 2 GiB, no blocks
    collection = collect_run(
        store,
        job=JOB,
        run_id=RUN,
        manifest_text=MANIFEST_TEXT,
        summary=SUMMARY,
        logs_dir=work / "logs",
        outputs_dir=work / "outputs",
        max_outputs=2**30,
    )
    assert collection.refused == [
        Refusal(
            "outputs/sparse.img",
            "2.0 GiB, beyond the 1.0 GiB cap on a run's outputs (RUNNER_MAX_OUTPUTS); "
            "1024.0 MiB of it left: not collected",
        )
    ]
    assert "outputs/sparse.img" not in files_below(run_dir)
    assert "outputs/model.keras" in files_below(run_dir)


def test_the_default_cap_leaves_ordinary_outputs_alone(store: RecordingStore, work: Path) -> None:
    assert collect(store, work).refused == []


# --- multi-worker runs -------------------------------------------------------------------------


def test_a_worker_collects_into_its_own_area_complete_on_its_own(
    store: RecordingStore, tmp_path: Path
) -> None:
    (tmp_path / "w1/outputs").mkdir(parents=True)
    (tmp_path / "w1/outputs/metrics.json").write_text('{"worker": 1}\n')
    (tmp_path / "w1/logs").mkdir()
    (tmp_path / "w1/logs/attempt-1.log").write_text("worker 1 says hello\n")
    collection = collect_worker(
        store,
        job=JOB,
        run_id=RUN,
        index=1,
        logs_dir=tmp_path / "w1/logs",
        outputs_dir=tmp_path / "w1/outputs",
    )
    assert sorted(entry.path for entry in collection.files) == ["logs/attempt-1.log", "outputs/metrics.json"]
    assert store.puts[-1] == f"{PREFIX}/workers/1/MANIFEST.json"  # written last: marks the area complete
    assert read_manifest(store, JOB, RUN) is None  # the run is complete only once the chief is collected
    assert next_attempt(store, JOB, RUN, worker=1) == 2 and next_attempt(store, JOB, RUN) == 1


def test_the_run_lists_every_worker_area_the_chief_counts(
    store: RecordingStore, work: Path, tmp_path: Path
) -> None:
    for index in (1, 2):
        (tmp_path / f"w{index}").mkdir()
        (tmp_path / f"w{index}/metrics.json").write_text(f'{{"worker": {index}}}\n')
        collect_worker(
            store, job=JOB, run_id=RUN, index=index, logs_dir=None, outputs_dir=tmp_path / f"w{index}"
        )
    collect_run(
        store,
        job=JOB,
        run_id=RUN,
        manifest_text=MANIFEST_TEXT,
        summary=SUMMARY,
        logs_dir=work / "logs",
        outputs_dir=work / "outputs",
        workers=2,  # worker 2's area is there, but this run says it has two workers: 0 and 1
    )
    files = read_manifest(store, JOB, RUN)
    assert files is not None
    paths = [entry.path for entry in files]
    assert "workers/1/outputs/metrics.json" in paths and "outputs/model.keras" in paths
    assert not any(path.startswith("workers/2/") for path in paths)


def test_the_chief_is_collected_by_collect_run_not_as_a_worker(store: RecordingStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the chief"):
        collect_worker(store, job=JOB, run_id=RUN, index=0, logs_dir=None, outputs_dir=tmp_path)
