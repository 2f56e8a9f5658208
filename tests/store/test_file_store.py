"""Tests for runner.store.file.FileStore: atomic writes, reads, listing and staying inside the root."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store import Digest, FileStore, Store, StoredObject
from runner.store import file as file_module
from runner.store.base import CHUNK

MiB = 1024 * 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> FileStore:
    return FileStore(root)


def digest_of(data: bytes) -> Digest:
    return Digest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def every_entry(top: Path) -> list[str]:
    """Every file, link and directory below top (hidden ones too), relative and sorted."""
    found = []
    for directory, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            found.append((Path(directory) / name).relative_to(top).as_posix())
    return sorted(found)


def temp_files(top: Path) -> list[str]:
    return [name for name in every_entry(top) if Path(name).name.startswith(".tmp-")]


class Exploding(io.RawIOBase):
    """A source stream that yields `good` bytes in small reads, then raises `error`."""

    def __init__(self, good: bytes, error: BaseException, on_read: Callable[[], None] | None = None):
        self.remaining = good
        self.error = error
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.on_read is not None:
            self.on_read()
        if not self.remaining:
            raise self.error
        size = min(len(buffer), len(self.remaining), 1000)
        buffer[:size] = self.remaining[:size]
        self.remaining = self.remaining[size:]
        return size


class Watching(io.RawIOBase):
    """A source stream that calls on_read before every read: to look at the store mid-write."""

    def __init__(self, data: bytes, on_read: Callable[[], None]):
        self.inner = io.BytesIO(data)
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.on_read()
        return self.inner.readinto(buffer)


# --- writing ---------------------------------------------------------------------------------


def test_put_bytes_writes_the_object_and_returns_its_digest(store: FileStore, root: Path) -> None:
    data = b"weights" * 1000
    assert store.put_bytes("mnist/r1/outputs/model.keras", data) == digest_of(data)
    assert (root / "mnist/r1/outputs/model.keras").read_bytes() == data
    assert every_entry(root) == ["mnist", "mnist/r1", "mnist/r1/outputs", "mnist/r1/outputs/model.keras"]


def test_put_stream_copies_a_stream_larger_than_one_chunk(store: FileStore, root: Path) -> None:
    data = os.urandom(2 * CHUNK + 12345)
    assert store.put_stream("j/r/big.bin", io.BytesIO(data)) == digest_of(data)
    assert (root / "j/r/big.bin").read_bytes() == data


def test_put_of_an_empty_object(store: FileStore, root: Path) -> None:
    assert store.put_bytes("j/r/empty", b"") == Digest(0, hashlib.sha256(b"").hexdigest())
    assert (root / "j/r/empty").read_bytes() == b""


def test_put_replaces_an_existing_object(store: FileStore, root: Path) -> None:
    store.put_bytes("j/r/metrics.json", b'{"loss": 1}')
    store.put_bytes("j/r/metrics.json", b'{"loss": 0.5}')
    assert store.get_bytes("j/r/metrics.json") == b'{"loss": 0.5}'
    assert every_entry(root / "j/r") == ["metrics.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_objects_are_private_to_their_owner_whatever_the_umask(
    store: FileStore, root: Path, umask: int
) -> None:
    """A run's manifest, logs and outputs may hold secrets (issue 11): 0600, the store's root 0700. A store
    shared between users is an s3:// one, with its own access policy."""
    previous = os.umask(umask)
    try:
        store.put_bytes("j/r/a", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((root / "j/r/a").stat().st_mode) == 0o600


def test_no_temp_files_are_left_after_success(store: FileStore, root: Path) -> None:
    for index in range(5):
        store.put_bytes(f"j/r/f{index}", b"data")
    assert temp_files(root) == []


def test_the_object_is_not_visible_under_its_name_while_being_written(store: FileStore, root: Path) -> None:
    final = root / "j/r/model.h5"
    seen: list[tuple[bool, list[StoredObject]]] = []

    def look() -> None:
        seen.append((final.exists(), store.list("j")))

    data = os.urandom(3 * CHUNK)
    store.put_stream("j/r/model.h5", cast(BinaryIO, Watching(data, look)))
    assert len(seen) >= 3
    assert all(not exists for exists, _ in seen)
    assert all(listed == [] for _, listed in seen)  # the temporary file is not listed either
    assert final.read_bytes() == data


@pytest.mark.parametrize(
    "error", [OSError(5, "Input/output error"), RuntimeError("source broke"), KeyboardInterrupt()]
)
def test_a_source_failing_mid_stream_leaves_nothing_behind(
    store: FileStore, root: Path, error: BaseException
) -> None:
    store.put_bytes("j/r/other", b"keep")
    with pytest.raises(type(error)) as info:
        store.put_stream("j/r/model.keras", cast(BinaryIO, Exploding(b"x" * 5000, error)))
    assert info.value is error
    assert every_entry(root / "j/r") == ["other"]  # no model.keras, no temporary file


def test_a_failed_rewrite_keeps_the_previous_object_whole(store: FileStore) -> None:
    store.put_bytes("j/r/model.keras", b"old model")
    seen: list[bytes] = []

    def look() -> None:
        seen.append(store.get_bytes("j/r/model.keras"))

    with pytest.raises(RuntimeError):
        source = Exploding(b"new" * 3000, RuntimeError("halfway"), look)
        store.put_stream("j/r/model.keras", cast(BinaryIO, source))
    assert set(seen) == {b"old model"}
    assert store.get_bytes("j/r/model.keras") == b"old model"
    assert store.list("j") == [StoredObject("j/r/model.keras", 9)]


def test_writing_over_a_directory_is_a_store_error(store: FileStore, root: Path) -> None:
    store.put_bytes("j/r/outputs/a", b"x")
    with pytest.raises(StoreError, match="cannot write"):
        store.put_bytes("j/r/outputs", b"x")
    assert temp_files(root) == []


def test_writing_below_a_file_is_a_store_error(store: FileStore, root: Path) -> None:
    store.put_bytes("j/r/job.yaml", b"x")
    with pytest.raises(StoreError, match="cannot write"):
        store.put_bytes("j/r/job.yaml/inner", b"x")
    assert every_entry(root / "j/r") == ["job.yaml"]


# --- reading ---------------------------------------------------------------------------------


def test_get_bytes_returns_what_was_put(store: FileStore) -> None:
    store.put_bytes("j/r/run.json", b"{}\n")
    assert store.get_bytes("j/r/run.json") == b"{}\n"


@pytest.mark.parametrize("key", ["j/r/missing", "nothing/here/at/all", "j/r", "j/r/file/below"])
def test_get_bytes_of_a_missing_key_is_not_found(store: FileStore, key: str) -> None:
    store.put_bytes("j/r/file", b"x")
    with pytest.raises(NotFoundError) as info:
        store.get_bytes(key)
    assert str(info.value) == f"{store.location(key)} does not exist"


def test_exists(store: FileStore) -> None:
    store.put_bytes("j/r/MANIFEST.json", b"{}")
    assert store.exists("j/r/MANIFEST.json")
    assert not store.exists("j/r/missing")
    assert not store.exists("j/r")  # a directory is not an object
    assert not store.exists("j/r/MANIFEST.json/x")


def test_location_and_url(store: FileStore, root: Path) -> None:
    assert store.url == root.as_uri()
    assert store.location("j/r/outputs/model.keras") == (root / "j/r/outputs/model.keras").as_uri()
    assert store.location("j/r/a b") == root.as_uri() + "/j/r/a%20b"


def test_a_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FileStore(Path("rel"))
    assert store.root == tmp_path / "rel"
    store.put_bytes("a/b", b"x")
    assert (tmp_path / "rel/a/b").read_bytes() == b"x"


# --- listing ---------------------------------------------------------------------------------


def test_list_returns_sorted_keys_with_sizes(store: FileStore) -> None:
    for key, size in [("j/r/outputs/z.txt", 3), ("j/r/MANIFEST.json", 10), ("j/r/logs/attempt-1.log", 0)]:
        store.put_bytes(key, b"x" * size)
    store.put_bytes("j/r/outputs/sub/a.bin", b"12345")
    store.put_bytes("j/other/run.json", b"{}")
    store.put_bytes("jj/r/run.json", b"{}")
    assert store.list("j/r") == [
        StoredObject("j/r/MANIFEST.json", 10),
        StoredObject("j/r/logs/attempt-1.log", 0),
        StoredObject("j/r/outputs/sub/a.bin", 5),
        StoredObject("j/r/outputs/z.txt", 3),
    ]
    assert [item.key for item in store.list("j")] == [
        "j/other/run.json",
        "j/r/MANIFEST.json",
        "j/r/logs/attempt-1.log",
        "j/r/outputs/sub/a.bin",
        "j/r/outputs/z.txt",
    ]


def test_list_of_an_unknown_prefix_is_empty(store: FileStore) -> None:
    assert store.list("nothing") == []
    store.put_bytes("j/r/a", b"x")
    assert store.list("j/r/a") == []  # an object is not a prefix


def test_list_skips_temporary_files_left_by_a_crashed_writer(store: FileStore, root: Path) -> None:
    store.put_bytes("j/r/a", b"x")
    leftover = root / "j/r" / f".tmp-{'0' * 32}.part"
    leftover.write_bytes(b"half a model")
    assert file_module.is_temp_name(leftover.name)
    assert store.list("j") == [StoredObject("j/r/a", 1)]


def test_list_keeps_objects_that_merely_look_temporary(store: FileStore) -> None:
    """A job may well write outputs/.tmp-notes: it is an object like any other."""
    store.put_bytes("j/r/outputs/.tmp-notes", b"abc")
    assert store.list("j") == [StoredObject("j/r/outputs/.tmp-notes", 3)]


def test_list_skips_what_is_not_a_regular_file(store: FileStore, root: Path, tmp_path: Path) -> None:
    store.put_bytes("j/r/a", b"x")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    (root / "j/r/link").symlink_to(outside)
    os.mkfifo(root / "j/r/fifo")
    assert store.list("j") == [StoredObject("j/r/a", 1)]


def test_list_of_an_empty_prefix_is_refused(store: FileStore) -> None:
    with pytest.raises(UnsafePathError):
        store.list("")


# --- downloading -----------------------------------------------------------------------------


def test_download_writes_the_object_and_returns_its_digest(store: FileStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK + 7)
    store.put_bytes("j/r/outputs/model.onnx", data)
    target = tmp_path / "dl" / "outputs" / "model.onnx"
    assert store.download("j/r/outputs/model.onnx", target) == digest_of(data)
    assert target.read_bytes() == data
    assert every_entry(tmp_path / "dl") == ["outputs", "outputs/model.onnx"]


def test_download_replaces_an_existing_file(store: FileStore, tmp_path: Path) -> None:
    store.put_bytes("j/r/a", b"new")
    target = tmp_path / "a"
    target.write_bytes(b"old contents")
    store.download("j/r/a", target)
    assert target.read_bytes() == b"new"


def test_download_replaces_a_symlink_rather_than_writing_through_it(store: FileStore, tmp_path: Path) -> None:
    store.put_bytes("j/r/a", b"new")
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    target = tmp_path / "dl" / "a"
    target.parent.mkdir()
    target.symlink_to(victim)
    store.download("j/r/a", target)
    assert not target.is_symlink()
    assert target.read_bytes() == b"new"
    assert victim.read_bytes() == b"untouched"


@pytest.mark.parametrize("key", ["j/r/missing", "j/r", "j/r/a/below"])
def test_download_of_a_missing_key_is_not_found_and_writes_nothing(
    store: FileStore, tmp_path: Path, key: str
) -> None:
    store.put_bytes("j/r/a", b"x")
    (tmp_path / "dl").mkdir()
    with pytest.raises(NotFoundError, match="does not exist"):
        store.download(key, tmp_path / "dl" / "file")
    assert every_entry(tmp_path / "dl") == []


def test_a_download_failing_mid_stream_keeps_the_old_file(
    store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("j/r/model", b"m" * 10_000)
    target = tmp_path / "dl" / "model"
    target.parent.mkdir()
    target.write_bytes(b"previous download")

    def failing(source: io.BufferedIOBase, sink: io.BufferedIOBase | None = None) -> Digest:
        assert sink is not None
        sink.write(source.read(100))
        sink.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("runner.store.file.hash_stream", failing)
    with pytest.raises(OSError, match="No space left"):
        store.download("j/r/model", target)
    assert target.read_bytes() == b"previous download"
    assert every_entry(target.parent) == ["model"]


# --- staying inside the root -----------------------------------------------------------------

UNSAFE_KEYS = ["../escape", "j/../../escape", "/tmp/escape", "j\\..\\..\\escape", "", "j//r", "./j"]


def operations(store: FileStore, key: str, tmp_path: Path) -> Iterator[Callable[[], object]]:
    yield lambda: store.put_bytes(key, b"x")
    yield lambda: store.put_stream(key, io.BytesIO(b"x"))
    yield lambda: store.get_bytes(key)
    yield lambda: store.download(key, tmp_path / "dl")
    yield lambda: store.exists(key)
    yield lambda: store.list(key)


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(store: FileStore, tmp_path: Path, key: str) -> None:
    for operation in operations(store, key, tmp_path):
        with pytest.raises(UnsafePathError):
            operation()
    assert every_entry(tmp_path) == []  # not even the store root was created


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the store, with a secret in it."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_bytes(b"secret")
    return directory


def test_a_symlinked_directory_in_the_store_does_not_let_writes_escape(
    store: FileStore, root: Path, outside: Path, tmp_path: Path
) -> None:
    root.mkdir()
    (root / "evil").symlink_to(outside)
    for key in ["evil/secret", "evil/new", "evil/deeper/new", "evil"]:
        for operation in operations(store, key, tmp_path):
            with pytest.raises(UnsafePathError, match="resolves outside the store"):
                operation()
    assert every_entry(outside) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"


def test_a_symlinked_file_in_the_store_is_not_read_or_written_through(
    store: FileStore, root: Path, outside: Path, tmp_path: Path
) -> None:
    (root / "j/r").mkdir(parents=True)
    (root / "j/r/leak").symlink_to(outside / "secret")
    (root / "j/r/rel").symlink_to("../../../outside/secret")
    for key in ["j/r/leak", "j/r/rel"]:
        for operation in operations(store, key, tmp_path):
            with pytest.raises(UnsafePathError, match="resolves outside the store"):
                operation()
    assert (outside / "secret").read_bytes() == b"secret"
    assert not (tmp_path / "dl").exists()


def test_a_store_root_that_is_a_symlink_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    store = FileStore(tmp_path / "link")
    store.put_bytes("j/r/a", b"x")
    assert (real / "j/r/a").read_bytes() == b"x"
    assert store.list("j") == [StoredObject("j/r/a", 1)]


def test_symlinks_within_the_store_are_followed(store: FileStore, root: Path) -> None:
    store.put_bytes("j/r1/a", b"x")
    (root / "alias").symlink_to(root / "j")
    assert store.get_bytes("alias/r1/a") == b"x"


def test_a_symlink_loop_in_the_store_is_a_store_error(store: FileStore, root: Path) -> None:
    root.mkdir()
    (root / "loop").symlink_to("loop")
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    for key in ["loop", "loop/x", "a/x"]:
        with pytest.raises(StoreError):
            store.get_bytes(key)
        with pytest.raises(StoreError):
            store.put_bytes(key + "/y", b"x")
        assert not store.exists(key)
    assert store.list("loop") == []


def test_file_store_is_a_store(store: FileStore) -> None:
    as_protocol: Store = store
    as_protocol.put_bytes("j/r/a", b"x")
    assert as_protocol.exists("j/r/a")


def test_stale_temporary_files_are_listed_and_removed_by_age(store: FileStore, root: Path) -> None:
    store.put_bytes("job/run-1/model.bin", b"model")
    stale = root / "job" / "run-2" / f".tmp-{'a' * 32}.part"
    stale.parent.mkdir(parents=True)
    fresh = root / "job" / "run-1" / f".tmp-{'b' * 32}.part"
    lookalike = root / "job" / "run-1" / ".tmp-not-ours.part"
    for path in (stale, fresh, lookalike):
        path.write_bytes(b"partial")
    os.utime(stale, (1000.0, 1000.0))
    os.utime(lookalike, (1000.0, 1000.0))
    assert [item.key for item in store.list("job")] == ["job/run-1/.tmp-not-ours.part", "job/run-1/model.bin"]
    assert store.stale_temp_files("job", older_than=2000.0) == [stale]
    assert store.remove_stale_temp_files("job", older_than=2000.0) == [f"job/run-2/{stale.name}"]
    assert not stale.exists() and not stale.parent.exists(), "the directory it leaves empty goes too"
    assert fresh.exists() and lookalike.exists()


def test_check_writable_refuses_a_store_that_is_a_file(tmp_path: Path) -> None:
    regular = tmp_path / "store"
    regular.write_text("a file\n")
    with pytest.raises(StoreError, match="cannot write to file://"):
        FileStore(regular).check_writable()
    FileStore(tmp_path / "new" / "store").check_writable()
    assert list((tmp_path / "new" / "store").iterdir()) == [], "the probe leaves nothing behind"
