"""Artifact stores: one protocol, file:// (a directory) and s3:// (a bucket and prefix)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.errors import StoreError, UserError
from runner.store.base import Digest, Store, StoredObject, check_key
from runner.store.file import FileStore
from runner.store.s3 import NO_BOTO3_HINT, S3Store, have_boto3

__all__ = [
    "Digest",
    "FileStore",
    "S3Store",
    "Store",
    "StoredObject",
    "check_key",
    "open_store",
]


def open_store(url: str) -> Store:
    """The store behind url: file:///path, a plain path (~ expanded) or s3://bucket/prefix."""
    if not url.strip():
        raise UserError("the store URL is empty", hint="use file:///path/to/store or a plain path")
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UserError(
                f"store URL {url!r}: file:// URLs name a local path, not host {parsed.netloc!r}",
                hint="use file:///path/to/store (three slashes), e.g. file:///data/runner",
            )
        path = unquote(parsed.path)
        if not path.startswith("/"):
            raise UserError(
                f"store URL {url!r}: a file: URL needs an absolute path",
                hint="use file:///path/to/store, or a plain path such as ./store or ~/store",
            )
        return FileStore(Path(path))
    if parsed.scheme == "":
        return FileStore(Path(url).expanduser())
    if parsed.scheme == "s3":
        return _s3_store(url)
    raise UserError(
        f"store URL {url!r}: unsupported scheme {parsed.scheme!r}",
        hint="use file:///path/to/store or s3://bucket/prefix",
    )


def _s3_store(url: str) -> S3Store:
    """s3://bucket/prefix, read as the AWS CLI reads it: no percent-decoding, '?' and '#' are key text."""
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if not bucket:
        raise UserError(
            f"store URL {url!r}: an s3:// URL names a bucket",
            hint="use s3://bucket/prefix, e.g. s3://ml/runner",
        )
    try:
        store = S3Store(bucket, prefix)
    except UserError as error:
        raise UserError(f"store URL {url!r}: {error.message}", hint=error.hint) from None
    if not have_boto3():  # said now, not at the first upload after the job has run
        raise StoreError(
            f"store URL {url!r}: s3:// stores need boto3, which is not installed", hint=NO_BOTO3_HINT
        )
    return store
