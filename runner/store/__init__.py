"""Artifact stores: one protocol, file:// now (s3:// arrives with the Kubernetes backend)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.errors import UserError
from runner.store.base import Digest, Store, StoredObject, check_key, hash_file
from runner.store.file import FileStore

__all__ = ["Digest", "FileStore", "Store", "StoredObject", "check_key", "hash_file", "open_store"]


def open_store(url: str) -> Store:
    """The store behind url: file:///path or a plain path; s3:// is not supported yet."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UserError(f"store URL {url!r}: file:// URLs name a local path, e.g. file:///data/runner")
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "" and url:
        return FileStore(Path(url).expanduser())
    raise UserError(
        f"store URL {url!r}: unsupported scheme {parsed.scheme!r}",
        hint="use file:///path/to/store (s3:// arrives with the Kubernetes backend)",
    )
