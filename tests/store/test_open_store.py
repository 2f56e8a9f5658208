"""Tests for runner.store.open_store: which URLs name a store, and the errors for the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runner.errors import UserError
from runner.store import FileStore, S3Store, Store, open_store


def file_store(url: str) -> FileStore:
    store = open_store(url)
    assert isinstance(store, FileStore)
    return store


def test_file_url_names_an_absolute_path(tmp_path: Path) -> None:
    store = file_store(tmp_path.as_uri())
    assert store.root == tmp_path
    assert store.url == tmp_path.as_uri()


def test_file_url_literal() -> None:
    store = file_store("file:///data/runner/store")
    assert store.root == Path("/data/runner/store")
    assert store.url == "file:///data/runner/store"


def test_file_url_is_percent_decoded() -> None:
    assert file_store("file:///data/my%20store/%C3%BC").root == Path("/data/my store/ü")


def test_file_url_with_localhost_is_local() -> None:
    assert file_store("file://localhost/data/store").root == Path("/data/store")


def test_plain_absolute_path() -> None:
    assert file_store("/data/store").root == Path("/data/store")


def test_plain_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert file_store("store").root == tmp_path / "store"
    assert file_store("./a/b").root == tmp_path / "a" / "b"


def test_plain_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert file_store("~/runner-store").root == tmp_path / "runner-store"
    assert file_store("~").root == tmp_path


def test_opened_store_works(tmp_path: Path) -> None:
    store: Store = open_store(str(tmp_path / "s"))
    store.put_bytes("job/run/job.yaml", b"kind: Job\n")
    assert open_store((tmp_path / "s").as_uri()).get_bytes("job/run/job.yaml") == b"kind: Job\n"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "store_url"),
    [
        ("s3://ml-artifacts/runner", "ml-artifacts", "runner", "s3://ml-artifacts/runner"),
        ("s3://ml-artifacts/team/a/runs/", "ml-artifacts", "team/a/runs", "s3://ml-artifacts/team/a/runs"),
        ("s3://ml-artifacts", "ml-artifacts", "", "s3://ml-artifacts"),
        ("s3://ml-artifacts/", "ml-artifacts", "", "s3://ml-artifacts"),
        ("S3://ml-artifacts/x", "ml-artifacts", "x", "s3://ml-artifacts/x"),
        ("s3://ml-artifacts/my%20dir#1", "ml-artifacts", "my%20dir#1", "s3://ml-artifacts/my%20dir#1"),
    ],
)
def test_s3_url_names_a_bucket_and_a_prefix(url: str, bucket: str, prefix: str, store_url: str) -> None:
    """Read as the AWS CLI reads it: no percent-decoding, '#' and '?' belong to the prefix."""
    store = open_store(url)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == (bucket, prefix, store_url)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("gs://bucket", "gs"),
        ("http://example.com/store", "http"),
        ("https://example.com/store", "https"),
        ("ftp://host/x", "ftp"),
    ],
)
def test_other_schemes_are_user_errors_with_a_hint(url: str, scheme: str) -> None:
    with pytest.raises(UserError) as info:
        open_store(url)
    assert str(info.value) == f"store URL {url!r}: unsupported scheme {scheme!r}"
    assert info.value.hint == "use file:///path/to/store or s3://bucket/prefix"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("url", ["file://server/data/store", "file://data/store", "file://10.0.0.1/x"])
def test_file_url_with_a_host_is_refused(url: str) -> None:
    with pytest.raises(UserError) as info:
        open_store(url)
    assert str(info.value).startswith(f"store URL {url!r}: file:// URLs name a local path")
    assert info.value.hint is not None
    assert "file:///" in info.value.hint


@pytest.mark.parametrize("url", ["file:relative/store", "file:~/store", "file:", "file://"])
def test_file_url_without_an_absolute_path_is_refused(url: str) -> None:
    with pytest.raises(UserError, match="needs an absolute path") as info:
        open_store(url)
    assert info.value.hint is not None


@pytest.mark.parametrize("url", ["", "   "])
def test_empty_url_is_refused(url: str) -> None:
    with pytest.raises(UserError, match="the store URL is empty") as info:
        open_store(url)
    assert info.value.hint is not None


def test_s3_urls_open_the_boto3_client_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """One S3 client, boto3's, imported on first use only: opening a store checks the URL alone."""
    from runner.store import S3Store

    monkeypatch.setitem(sys.modules, "botocore", None)  # an import now would fail
    store = open_store("s3://ml-artifacts/team/a/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == ("ml-artifacts", "team/a", "s3://ml-artifacts/team/a")
    with pytest.raises(UserError, match="is not an S3 bucket name") as info:
        open_store("s3://bad bucket/x")
    assert str(info.value).startswith("store URL 's3://bad bucket/x': ")
