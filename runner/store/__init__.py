"""Artifact stores: one protocol, file:// (a directory) and s3:// (a bucket and prefix).

s3:// has one client, S3Store on boto3: the runner's, and the agent's inside job images, which carry
boto3 in the agent's own environment (/opt/runner; runner.images.recipe). boto3 is imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.errors import UserError
from runner.store.base import Digest, Store, StoredObject, check_key
from runner.store.file import FileStore
from runner.store.s3 import S3Store

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


def _s3_store(url: str) -> Store:
    """s3://bucket/prefix, read as the AWS CLI reads it: no percent-decoding, '?' and '#' are key text."""
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if not bucket:
        raise UserError(
            f"store URL {url!r}: an s3:// URL names a bucket",
            hint="use s3://bucket/prefix, e.g. s3://ml/runner",
        )
    try:
        return S3Store(bucket, prefix)
    except UserError as error:
        raise UserError(f"store URL {url!r}: {error.message}", hint=error.hint) from None
