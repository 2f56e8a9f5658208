"""The Store protocol every artifact store implements, and the key rules they share."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from runner.errors import UnsafePathError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    # when the object was last written (seconds since the epoch), where the store says so; not part of
    # an object's identity: retention orders runs by it when their run.json has no finished time
    modified: float | None = field(default=None, compare=False)


class Store(Protocol):
    """A flat key space of immutable objects; keys are relative POSIX paths."""

    url: str

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        """Write source under key atomically: readers see the whole object or nothing."""
        ...

    def put_bytes(self, key: str, data: bytes) -> Digest: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, destination: Path) -> Digest:
        """Copy key to destination (written atomically) and return what was written."""
        ...

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with prefix + '/', sorted by key."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, keys: Sequence[str]) -> None:
        """Delete these objects, in the order given as far as the store allows; missing ones are no error.

        Callers that need an order across objects (retention deletes MANIFEST.json before the rest
        of a run) make one call per step: a call returns only once its objects are gone.
        """
        ...

    def location(self, key: str) -> str:
        """A URL a person can use to find key."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that could leave their prefix: empty parts, '.', '..', absolute or Windows paths."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafePathError(f"refusing unsafe path {key!r}: it must be relative and use '/'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise UnsafePathError(f"refusing unsafe path {key!r}: '..', '.' and empty parts are not allowed")
    try:
        key.encode("utf-8", "surrogateescape")  # what a file name can hold (lone surrogates cannot)
    except UnicodeEncodeError:
        raise UnsafePathError(f"refusing unsafe path {key!r}: it cannot be written as a file name") from None
    return key


def hash_stream(source: BinaryIO, sink: BinaryIO | None = None) -> Digest:
    """Read source to its end, copying into sink when given; return its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return Digest(size=size, sha256=digest.hexdigest())
