"""Artifact stores: one protocol, file:// now (s3:// arrives with the Kubernetes backend)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.errors import UserError
from runner.store.base import Digest, Store, StoredObject, check_key, hash_file
from runner.store.file import FileStore

__all__ = ["Digest", "FileStore", "Store", "StoredObject", "check_key", "hash_file", "open_store"]


def open_store(url: str) -> Store:
    """The store behind url: file:///path or a plain path (~ expanded); s3:// is not supported yet."""
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
    raise UserError(
        f"store URL {url!r}: unsupported scheme {parsed.scheme!r}",
        hint="use file:///path/to/store (s3:// arrives with the Kubernetes backend)",
    )
