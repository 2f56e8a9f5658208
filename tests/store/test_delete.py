"""Store.delete: file:// (inside the root only, empty directories tidied) and s3:// (moto's server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.errors import StoreError, UnsafePathError
from runner.store import FileStore, S3Store
from runner.store import s3 as s3_module
from tests.store.test_s3 import watch

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def tree(root: Path) -> list[str]:
    """Every file and directory below root, relative and sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def files(root: Path) -> FileStore:
    store = FileStore(root)
    for key in (
        "j/j-1/MANIFEST.json",
        "j/j-1/outputs/model/w.bin",
        "j/j-1/logs/attempt-1.log",
        "j/j-2/run.json",
    ):
        store.put_bytes(key, b"x")
    store.put_bytes("j/latest", b"{}")
    return store


def test_file_delete_removes_the_files_and_the_directories_it_empties(files: FileStore, root: Path) -> None:
    files.delete(["j/j-1/MANIFEST.json"])
    assert not (root / "j/j-1/MANIFEST.json").exists()
    files.delete(["j/j-1/outputs/model/w.bin", "j/j-1/logs/attempt-1.log"])
    assert tree(root) == ["j", "j/j-2", "j/j-2/run.json", "j/latest"]
    files.delete(["j/j-2/run.json", "j/latest"])
    assert root.is_dir() and tree(root) == []  # the root itself stays


def test_file_delete_of_missing_keys_is_no_error(files: FileStore, root: Path) -> None:
    before = tree(root)
    files.delete(["j/nothing", "j/j-1/outputs/nothing/at/all", "j/j-2/run.json/below-a-file"])
    assert tree(root) == before
    files.delete([])


@pytest.mark.parametrize("bad", ["../outside", "j/../../outside", "/etc/passwd", "j//x", ""])
def test_file_delete_refuses_unsafe_keys_before_deleting_anything(
    files: FileStore, root: Path, bad: str
) -> None:
    before = tree(root)
    with pytest.raises(UnsafePathError):
        files.delete(["j/j-2/run.json", bad])
    assert tree(root) == before


def test_file_delete_never_follows_a_symlink_out_of_the_root(
    files: FileStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (root / "j" / "escape").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside the store"):
        files.delete(["j/escape/precious"])
    assert (outside / "precious").read_text() == "keep me"


def test_file_delete_refuses_a_directory(files: FileStore) -> None:
    with pytest.raises(StoreError, match="is a directory, not an object"):
        files.delete(["j/j-1/outputs"])


def test_file_list_says_when_each_object_was_written(files: FileStore, root: Path) -> None:
    os.utime(root / "j/j-2/run.json", (1_000_000, 1_000_000))
    modified = {item.key: item.modified for item in files.list("j")}
    assert modified["j/j-2/run.json"] == 1_000_000
    assert all(value is not None for value in modified.values())


def test_a_write_survives_its_directory_being_tidied_away_under_it(
    files: FileStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another job's retention can remove a directory this write has just made: it is made again."""
    real_open = os.open
    removed: list[str] = []

    def open_after_a_tidy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        target = Path(path)
        if target.name.startswith(".tmp-") and not removed:
            target.parent.rmdir()
            target.parent.parent.rmdir()
            removed.append(str(target.parent))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_a_tidy)  # what write_atomically calls
    files.put_bytes("k/k-1/outputs/a.txt", b"data")
    assert removed  # the directory did vanish once
    assert (root / "k/k-1/outputs/a.txt").read_bytes() == b"data"


# -- s3 ----------------------------------------------------------------------------------------------


@pytest.fixture
def s3_store(bucket: str) -> S3Store:
    return S3Store(bucket, "team/runs")


def names(s3: S3Client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_s3_delete_removes_only_the_keys_given(s3_store: S3Store, s3: S3Client, bucket: str) -> None:
    for key in ("j/j-1/MANIFEST.json", "j/j-1/outputs/a", "j/j-2/run.json"):
        s3_store.put_bytes(key, b"x")
    s3.put_object(Bucket=bucket, Key="elsewhere/j/j-1/outputs/a", Body=b"not ours")
    s3_store.delete(["j/j-1/MANIFEST.json", "j/j-1/outputs/a", "j/j-1/never-there"])
    assert names(s3, bucket) == ["elsewhere/j/j-1/outputs/a", "team/runs/j/j-2/run.json"]
    s3_store.delete([])


def test_s3_delete_sends_batches_in_order(
    s3_store: S3Store, s3: S3Client, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"j/j-1/outputs/{index}" for index in range(5)]
    for key in keys:
        s3_store.put_bytes(key, b"x")
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)
    calls = watch(s3_store)
    s3_store.delete(keys)
    assert calls.operations == ["DeleteObjects"] * 3
    assert names(s3, bucket) == []


def test_s3_delete_keeps_to_s3s_limit_of_a_thousand_keys_a_request(
    s3_store: S3Store, s3: S3Client, bucket: str
) -> None:
    s3_store.put_bytes("j/j-1/outputs/0000", b"x")
    keys = [f"j/j-1/outputs/{index:04d}" for index in range(1001)]  # missing keys are no error: no setup
    calls = watch(s3_store)
    s3_store.delete(keys)
    assert calls.count("DeleteObjects") == 2
    assert names(s3, bucket) == []


def test_s3_delete_refuses_unsafe_keys_before_deleting_anything(
    s3_store: S3Store, s3: S3Client, bucket: str
) -> None:
    s3_store.put_bytes("j/j-1/a", b"x")
    with pytest.raises(UnsafePathError):
        s3_store.delete(["j/j-1/a", "../b"])
    assert names(s3, bucket) == ["team/runs/j/j-1/a"]


def test_s3_delete_reports_the_keys_s3_would_not_delete(bucket: str, aws_env: str) -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    store = S3Store(bucket, "p", client=client)
    errors = [
        {"Key": "p/j/j-1/a", "Code": "AccessDenied", "Message": "Access Denied"},
        {"Key": "p/j/j-1/b", "Code": "AccessDenied", "Message": "Access Denied"},
    ]
    with Stubber(client) as stub:
        stub.add_response("delete_objects", {"Errors": errors})
        with pytest.raises(StoreError) as caught:
            store.delete(["j/j-1/a", "j/j-1/b"])
    assert caught.value.message == (
        f"cannot delete s3://{bucket}/p/j/j-1/a (and 1 more): AccessDenied: Access Denied"
    )
    assert caught.value.hint is not None and "s3:DeleteObject" in caught.value.hint


def test_s3_list_says_when_each_object_was_written(s3_store: S3Store, s3: S3Client, bucket: str) -> None:
    s3_store.put_bytes("j/j-1/MANIFEST.json", b"{}")
    (item,) = s3_store.list("j")
    written = s3.head_object(Bucket=bucket, Key="team/runs/j/j-1/MANIFEST.json")["LastModified"]
    assert item.modified == written.timestamp()
